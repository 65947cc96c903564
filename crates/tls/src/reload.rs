//! A value built from files and rebuilt when any of them changes on disk.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use crate::TlsError;

/// What identifies one version of a file: its modification time and length.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &std::path::Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Holds the value built from the current files. [`Reloading::current`] looks at the files'
/// stamps (one `stat` each) and rebuilds when one changed; a rebuild that fails keeps the
/// previous value, so a half-written renewal never takes a working server down.
pub(crate) struct Reloading<T> {
    paths: Vec<PathBuf>,
    build: Box<dyn Fn() -> Result<T, TlsError> + Send + Sync>,
    state: Mutex<(Vec<Stamp>, Arc<T>)>,
}

impl<T> Reloading<T> {
    /// Builds the first value; fails when the files are not usable now.
    pub(crate) fn new(
        paths: Vec<PathBuf>,
        build: impl Fn() -> Result<T, TlsError> + Send + Sync + 'static,
    ) -> Result<Self, TlsError> {
        let stamps = paths.iter().map(|p| stamp(p)).collect();
        let value = Arc::new(build()?);
        Ok(Reloading {
            paths,
            build: Box::new(build),
            state: Mutex::new((stamps, value)),
        })
    }

    /// Returns the value for the files as they are now.
    pub(crate) fn current(&self) -> Arc<T> {
        let stamps: Vec<Stamp> = self.paths.iter().map(|p| stamp(p)).collect();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.0 != stamps {
            match (self.build)() {
                Ok(value) => {
                    tracing::info!(files = ?self.paths, "tls material reloaded");
                    *state = (stamps, Arc::new(value));
                }
                Err(err) => {
                    // Remember the stamps so a broken file is reported once, not per handshake.
                    tracing::warn!(error = %err, "tls material not reloaded, keeping the previous");
                    state.0 = stamps;
                }
            }
        }
        Arc::clone(&state.1)
    }
}
