//! Keeps a connection's traffic moving: a request body that stops arriving, or arrives at a
//! trickle, and a client that stops reading its response, are cut off. Without this, a
//! connection that is "busy" (and so never closed for room) could be held forever by sending
//! one byte every few seconds or by never reading.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// After this long, a request body must have averaged at least [`MIN_BODY_RATE`]. Forms are a
/// few hundred bytes and arrive at once; a large upload gets a running start.
const BODY_GRACE: Duration = Duration::from_secs(10);
/// Bytes per second a body must average after the grace period: 1 KiB/s is far below any real
/// network, and far above a trickle meant to hold a connection.
const MIN_BODY_RATE: u64 = 1024;

/// A request body with a stall deadline and a minimum average rate.
pub struct PacedBody<B> {
    inner: B,
    stall: Duration,
    /// Running while the handler waits for data that does not come; cleared by every frame.
    /// Started only when the handler asks, so time the handler spends elsewhere never counts.
    waiting: Option<Pin<Box<Sleep>>>,
    /// When the handler first asked for the body.
    started: Option<Instant>,
    received: u64,
}

impl<B> PacedBody<B> {
    pub fn new(inner: B, stall: Duration) -> PacedBody<B> {
        PacedBody {
            inner,
            stall,
            waiting: None,
            started: None,
            received: 0,
        }
    }
}

fn too_slow(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, what.to_string())
}

impl<B> Body for PacedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let started = *this.started.get_or_insert_with(Instant::now);
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.waiting = None;
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                }
                let elapsed = started.elapsed();
                let floor = MIN_BODY_RATE.saturating_mul(elapsed.as_secs());
                if elapsed > BODY_GRACE && this.received < floor {
                    return Poll::Ready(Some(Err(
                        too_slow("the request body arrives too slowly").into()
                    )));
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let stall = this.stall;
                let timer = this
                    .waiting
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
                ready!(timer.as_mut().poll(cx));
                Poll::Ready(Some(Err(
                    too_slow("the request body stopped arriving").into()
                )))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A connection whose writes must make progress: a client that stops reading its response
/// for `stall` loses the connection (live event streams write a little often, so they pass).
pub struct PacedIo<I> {
    inner: I,
    stall: Duration,
    /// Running while a write waits; cleared by any progress.
    waiting: Option<Pin<Box<Sleep>>>,
}

impl<I> PacedIo<I> {
    pub fn new(inner: I, stall: Duration) -> PacedIo<I> {
        PacedIo {
            inner,
            stall,
            waiting: None,
        }
    }

    /// Turns a pending write into an error once it has waited `stall`.
    fn on_pending<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let stall = self.stall;
        let timer = self
            .waiting
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
        ready!(timer.as_mut().poll(cx));
        Poll::Ready(Err(too_slow("the client stopped reading")))
    }

    fn settle<T>(&mut self, r: Poll<io::Result<T>>, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        match r {
            Poll::Pending => self.on_pending(cx),
            done => {
                self.waiting = None;
                done
            }
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for PacedIo<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        // Reads are bounded elsewhere (header-read timeout, body pacing).
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for PacedIo<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.settle(r, cx)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_flush(cx);
        this.settle(r, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.settle(r, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.settle(r, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use tokio::io::AsyncWriteExt;

    /// Hang guard: the stalls below are 100 ms; this only stops a broken build hanging.
    const GUARD: Duration = Duration::from_secs(10);
    const STALL: Duration = Duration::from_millis(100);

    #[tokio::test]
    async fn a_body_that_stops_arriving_fails() {
        let never = http_body_util::StreamBody::new(futures_util::stream::pending::<
            Result<Frame<Bytes>, io::Error>,
        >());
        let body = PacedBody::new(never, STALL);
        let r = tokio::time::timeout(GUARD, body.collect())
            .await
            .expect("not hung");
        assert!(r.unwrap_err().to_string().contains("stopped arriving"));
    }

    #[tokio::test]
    async fn a_body_that_keeps_arriving_passes() {
        let body = PacedBody::new(http_body_util::Full::new(Bytes::from_static(b"x=1")), STALL);
        let got = body.collect().await.unwrap().to_bytes();
        assert_eq!(&got[..], b"x=1");
    }

    #[tokio::test]
    async fn a_client_that_stops_reading_loses_the_connection() {
        // The other end never reads; the pipe holds 64 bytes.
        let (ours, _theirs) = tokio::io::duplex(64);
        let mut io = PacedIo::new(ours, STALL);
        let write = async {
            loop {
                io.write_all(&[0u8; 1024]).await?;
            }
            #[allow(unreachable_code)]
            Ok::<(), io::Error>(())
        };
        let r = tokio::time::timeout(GUARD, write).await.expect("not hung");
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::TimedOut);
    }
}
