pub mod m20261127_000001_initial;
pub mod m20261201_000002_publications;
pub mod m20261204_000003_tandems;
