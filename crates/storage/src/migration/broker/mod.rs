pub mod m20261127_000001_initial;
pub mod m20261127_000002_round_certificate;
pub mod m20261127_000003_audit_log;
pub mod m20261127_000004_api_keys;
pub mod m20261203_000005_node_identity;
pub mod m20261204_000006_tandems;
pub mod m20261204_000010_mentee_erasure;
pub mod m20261207_000011_memberships;
