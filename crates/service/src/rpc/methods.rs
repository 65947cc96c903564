//! The methods a server knows, read once from the descriptor sets built into the binary: for
//! each request path its service, its method and its request message, so that spans and
//! metrics carry names without formatting them per call, and a refused request body can be
//! named. Paths that name no known method share one entry, `_OTHER` (as OpenTelemetry's
//! conventions say), so that a caller cannot grow the metrics with made-up paths.

use std::collections::HashMap;
use std::sync::Arc;

use prost::Message;
use prost_types::FileDescriptorSet;

/// What spans and metrics call a method that no descriptor names.
pub const OTHER: &str = "_OTHER";

/// One RPC method.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Method {
    /// `tandem.v1.MenteeService/SubmitMentee`: the span's name.
    pub name: Arc<str>,
    /// `tandem.v1.MenteeService`.
    pub service: Arc<str>,
    /// `SubmitMentee`.
    pub method: Arc<str>,
    /// The request message, e.g. `tandem.v1.SubmitMenteeRequest`.
    pub input: Arc<str>,
}

impl Method {
    fn new(service: &str, method: &str, input: &str) -> Self {
        Self {
            name: format!("{service}/{method}").into(),
            service: service.into(),
            method: method.into(),
            input: input.into(),
        }
    }
}

/// The methods of a server, by request path (`/tandem.v1.MenteeService/SubmitMentee`).
#[derive(Debug, Clone)]
pub struct Methods {
    by_path: Arc<HashMap<Box<str>, Arc<Method>>>,
    other: Arc<Method>,
}

impl Methods {
    /// Returns the methods described by `sets` (encoded `FileDescriptorSet`s), and those of the
    /// health and reflection services, which every server serves.
    pub fn new(sets: &[&[u8]]) -> Result<Self, prost::DecodeError> {
        let standard: [&[u8]; 3] = [
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ];
        let mut by_path = HashMap::new();
        for set in standard.iter().chain(sets) {
            let set = FileDescriptorSet::decode(*set)?;
            for file in &set.file {
                let package = file.package();
                for service in &file.service {
                    let service_name = match package {
                        "" => service.name().to_owned(),
                        package => format!("{package}.{}", service.name()),
                    };
                    for method in &service.method {
                        // Descriptors name types fully qualified, with a leading dot.
                        let input = method.input_type().trim_start_matches('.');
                        let entry = Method::new(&service_name, method.name(), input);
                        by_path.insert(format!("/{}", entry.name).into(), Arc::new(entry));
                    }
                }
            }
        }
        Ok(Self {
            by_path: Arc::new(by_path),
            other: Arc::new(Method::new(OTHER, OTHER, "request message")),
        })
    }

    /// Returns the method of a request path, or the shared entry of unknown paths.
    pub fn get(&self, path: &str) -> &Arc<Method> {
        self.by_path.get(path).unwrap_or(&self.other)
    }

    /// Returns whether `path` names a known method.
    pub fn knows(&self, path: &str) -> bool {
        self.by_path.contains_key(path)
    }

    /// Returns the known methods, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Method> {
        self.by_path.values().map(AsRef::as_ref)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_services_are_always_known() {
        let methods = Methods::new(&[]).expect("the built-in descriptor sets decode");
        let check = methods.get("/grpc.health.v1.Health/Check");
        assert_eq!(&*check.service, "grpc.health.v1.Health");
        assert_eq!(&*check.method, "Check");
        assert_eq!(&*check.input, "grpc.health.v1.HealthCheckRequest");
        assert_eq!(&*check.name, "grpc.health.v1.Health/Check");
        assert!(methods.knows("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"));
    }

    #[test]
    fn unknown_paths_share_one_entry() {
        let methods = Methods::new(&[]).expect("decode");
        let a = methods.get("/x.Y/Z");
        let b = methods.get("/made/up/path");
        assert!(Arc::ptr_eq(a, b));
        assert_eq!(&*a.method, OTHER);
    }

    #[test]
    fn a_broken_descriptor_set_is_an_error() {
        assert!(Methods::new(&[&[0xff, 0xff, 0xff]]).is_err());
    }
}
