pub mod m20261127_000001_initial;
pub mod m20261201_000002_publications;
pub mod m20261204_000003_tandems;
pub mod m20261204_000010_staff_keys;
pub mod m20261204_000011_audit_log;
pub mod m20261204_000012_forgotten_mentees;
pub mod m20261204_000013_mentee_ref;
pub mod m20261205_000014_shared_key_and_audit_columns;
