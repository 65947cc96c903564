//! Generates the tandem.v1 bindings with a vendored `protoc`, so a fresh machine needs nothing
//! but the Rust toolchain, and writes the contract's file descriptor set, which the servers'
//! reflection service answers from.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = ["common.proto", "tandem.proto", "node.proto", "broker.proto"]
        .map(|f| root.join("tandem/v1").join(f));
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let descriptors = std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("tandem_v1.bin");
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc);
    tonic_prost_build::configure()
        .file_descriptor_set_path(descriptors)
        .compile_with_config(config, &files, &[root])?;
    Ok(())
}
