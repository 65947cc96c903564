//! Generated bindings for the `tandem.v1` gRPC contract (`proto/tandem/v1/*.proto`).
//!
//! This crate holds generated code only; the domain crate converts between these messages and
//! its own types. Clients and servers for every service are included, and the contract's
//! encoded file descriptor set ([`FILE_DESCRIPTOR_SET`]) for server reflection.
//!
//! In the workspace: the bottom; `tandem-domain`, `tandem-tls` and the crates above them use it.

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod v1 {
    tonic::include_proto!("tandem.v1");
}

pub use v1::*;

/// The encoded `google.protobuf.FileDescriptorSet` of every `tandem.v1` file, for a server
/// reflection service.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("tandem_v1");
