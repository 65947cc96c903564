//! Server reflection, so that tools such as `grpcurl` list and describe a server's services
//! without the `.proto` files. Both versions of the protocol are served: v1, and v1alpha for
//! tools that know only that one.
//!
//! A server lists only what it serves: its own services, the health service (`health`: every
//! server with reflection has one) and reflection itself.

use tonic_reflection::pb::{v1, v1alpha};
use tonic_reflection::server::Builder;
use tonic_reflection::server::v1::{ServerReflection, ServerReflectionServer};
use tonic_reflection::server::v1alpha::{
    ServerReflection as ServerReflectionV1Alpha,
    ServerReflectionServer as ServerReflectionServerV1Alpha,
};

/// A reflection service could not be built: a descriptor set does not decode.
pub type ReflectionError = tonic_reflection::server::Error;

/// Returns the v1 and v1alpha reflection services of a server that serves `services` (full
/// names, such as `tandem.v1.MenteeService`), described by `descriptors` (encoded file
/// descriptor sets that hold those services and every file they import).
pub fn reflection(
    descriptors: &[&'static [u8]],
    services: &[&'static str],
) -> Result<
    (
        ServerReflectionServer<impl ServerReflection>,
        ServerReflectionServerV1Alpha<impl ServerReflectionV1Alpha>,
    ),
    ReflectionError,
> {
    let builder = || {
        let mut builder = Builder::configure()
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(v1::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(v1alpha::FILE_DESCRIPTOR_SET)
            .with_service_name(crate::health::SERVICE_NAME)
            .with_service_name(v1::server_reflection_server::SERVICE_NAME)
            .with_service_name(v1alpha::server_reflection_server::SERVICE_NAME);
        for set in descriptors {
            builder = builder.register_encoded_file_descriptor_set(set);
        }
        for service in services {
            builder = builder.with_service_name(*service);
        }
        builder
    };
    Ok((builder().build_v1()?, builder().build_v1alpha()?))
}
