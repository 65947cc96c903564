//! Shutdown: one [`CancellationToken`] per server, handed to every listener, accept loop and
//! background job it runs. A server function takes the caller's shutdown future, cancels its
//! token when that future completes, and returns once what it started has stopped.

use std::future::Future;

pub use tokio_util::sync::CancellationToken;

/// Runs `work` to its end. When `signal` completes first, cancels `token` (which is what
/// `work` watches) and then waits for `work` to finish.
pub async fn run_until<T>(
    signal: impl Future<Output = ()>,
    token: &CancellationToken,
    work: impl Future<Output = T>,
) -> T {
    tokio::pin!(work);
    tokio::select! {
        out = &mut work => out,
        () = signal => {
            token.cancel();
            work.await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_signal_cancels_the_token_and_the_work_finishes() {
        let token = CancellationToken::new();
        let watched = token.clone();
        let out = run_until(async {}, &token, async move {
            watched.cancelled().await;
            7
        })
        .await;
        assert_eq!(out, 7);
        assert!(token.is_cancelled());
    }

    #[tokio::test]
    async fn work_that_ends_first_leaves_the_token_alone() {
        let token = CancellationToken::new();
        let out = run_until(std::future::pending(), &token, async { 3 }).await;
        assert_eq!(out, 3);
        assert!(!token.is_cancelled());
    }
}
