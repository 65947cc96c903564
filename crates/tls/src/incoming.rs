//! Accepted TLS connections as a stream for tonic and axum: one accept loop, a handshake per
//! connection in its own task, and only the connections whose handshake succeeded handed on.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// Longest a peer may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// An accepted TLS connection whose handshake succeeded, ready for tonic's
/// `serve_with_incoming` (or axum through the broker's dashboard listener).
#[derive(Debug)]
pub struct TlsConn(pub(crate) tokio_rustls::server::TlsStream<TcpStream>);

impl TlsConn {
    /// Returns the peer's end-entity certificate, if it presented one.
    pub fn peer_certificate(&self) -> Option<&CertificateDer<'static>> {
        self.0.get_ref().1.peer_certificates()?.first()
    }

    /// Returns the protocol agreed through ALPN (`h2`, `http/1.1`), if any.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.0.get_ref().1.alpn_protocol()
    }
}

impl Connected for TlsConn {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.0.get_ref().0.connect_info()
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// Connections whose TLS handshake succeeded; the stream ends at shutdown.
pub type TlsIncoming = ReceiverStream<io::Result<TlsConn>>;

/// Accepts connections on `listener` until `shutdown` completes and runs `handshake` on each in
/// its own task, so a slow peer delays nobody. A connection whose handshake fails or times out
/// (a refused certificate, plain text on a TLS port) is closed and logged, never handed on.
pub(crate) fn accept_loop<H, F>(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    handshake: H,
) -> TlsIncoming
where
    H: Fn(TcpStream) -> F + Send + 'static,
    F: Future<Output = io::Result<TlsConn>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        tokio::pin!(shutdown);
        loop {
            let (tcp, peer) = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            // Without TCP_NODELAY, small gRPC replies wait for delayed ACKs (about 40 ms each).
            let _ = tcp.set_nodelay(true);
            let handshaking = handshake(tcp);
            let tx = tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshaking).await {
                    Ok(Ok(conn)) => {
                        let _ = tx.send(Ok(conn)).await;
                    }
                    Ok(Err(err)) => tracing::warn!(%peer, error = %err, "tls handshake refused"),
                    Err(_) => tracing::warn!(%peer, "tls handshake timed out"),
                }
            });
        }
    });
    ReceiverStream::new(rx)
}
