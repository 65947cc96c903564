pub mod m20261127_000001_initial;
