//! Generates the tandem.v1 bindings with a vendored `protoc`, so a fresh machine needs nothing
//! but the Rust toolchain.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = ["common.proto", "tandem.proto", "node.proto", "broker.proto"]
        .map(|f| root.join("tandem/v1").join(f));
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc);
    tonic_prost_build::configure().compile_with_config(config, &files, &[root])?;
    Ok(())
}
