//! A Unix socket on the device (Docker's), opened over the SSH connection as a byte stream,
//! that leaves nothing behind when it is dropped.
//!
//! Why not russh's own `ChannelStream`: when it is dropped it closes the channel first, and
//! russh 0.65 (still in 0.65.2) then never forgets that channel. The device answers our close
//! with its own; russh sees a channel it already closed and returns early, before removing the
//! channel's entry (an mpsc sender and its buffers) from the connection's map. Every Docker API
//! call left ~3.4 KiB behind per pooled connection, forever: 13.7 KiB per device per poll.
//!
//! So this stream never closes first. When dropped, it ends its side with EOF: sshd passes that
//! on to the socket, Docker hangs up, and the device closes the channel. russh handles a close
//! from the device completely (replies, removes the entry), which ends the message stream; a
//! small task waits for that. A device that never closes is given `CLOSE_WAIT`, then the
//! channel is closed from our side anyway and counted as stranded on the session; a session
//! with too many stranded channels is replaced by the pool (see `Session::is_closed`).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use russh::client::Msg;
use russh::{Channel, ChannelMsg, ChannelWriteHalf};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How long a dropped stream waits for the device to close the channel (Docker closes within
/// milliseconds of our EOF).
const CLOSE_WAIT: Duration = Duration::from_secs(30);

type Messages = Pin<Box<dyn Stream<Item = ChannelMsg> + Send>>;

/// Reads and writes the socket; see the module notes for what dropping it does.
pub struct SocketStream {
    /// What the device sends on the channel; None once handed to the closing task.
    messages: Option<Messages>,
    /// The unread rest of the last data message.
    unread: Bytes,
    writer: Pin<Box<dyn AsyncWrite + Send>>,
    /// Kept to send EOF (or, if the device never answers, close) after the stream is dropped.
    control: Option<ChannelWriteHalf<Msg>>,
    eof_sent: bool,
    /// The device's side has ended; every later read says so too.
    ended: bool,
    counts: Arc<SocketCounts>,
}

/// A session's socket channels, shared by its streams.
#[derive(Default)]
pub(super) struct SocketCounts {
    /// Opened and not yet closed by the device (in use, or dropped and waiting for the close).
    pub open: AtomicU32,
    /// The device did not close them after we were done.
    pub stranded: AtomicU32,
}

impl SocketStream {
    pub(super) fn new(channel: Channel<Msg>, counts: Arc<SocketCounts>) -> SocketStream {
        counts.open.fetch_add(1, Ordering::Relaxed);
        let (read, write) = channel.split();
        // The receiving half, owned by a stream: `None` once russh has dropped the channel's
        // entry, which only happens when the device closed it.
        // Fused: the closing task in `Drop` may poll it again after it ended, which a bare
        // `unfold` answers with a panic.
        let messages = futures_util::stream::unfold(read, |mut read| async move {
            read.wait().await.map(|m| (m, read))
        })
        .fuse();
        SocketStream {
            messages: Some(Box::pin(messages)),
            unread: Bytes::new(),
            writer: Box::pin(write.make_writer()),
            control: Some(write),
            eof_sent: false,
            ended: false,
            counts,
        }
    }
}

impl AsyncRead for SocketStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if !self.unread.is_empty() {
                let n = self.unread.len().min(buf.remaining());
                buf.put_slice(&self.unread.split_to(n));
                return Poll::Ready(Ok(()));
            }
            if self.ended {
                return Poll::Ready(Ok(()));
            }
            let Some(messages) = self.messages.as_mut() else {
                return Poll::Ready(Ok(()));
            };
            match messages.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(ChannelMsg::Data { data })) => self.unread = data,
                // The device's end of the socket is done (EOF, close, or the channel is gone).
                Poll::Ready(Some(ChannelMsg::Eof | ChannelMsg::Close) | None) => {
                    self.ended = true;
                    return Poll::Ready(Ok(()));
                }
                Poll::Ready(Some(_)) => {} // window adjustments and the like
            }
        }
    }
}

impl AsyncWrite for SocketStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.writer.as_mut().poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.writer.as_mut().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let done = self.writer.as_mut().poll_shutdown(cx);
        if done.is_ready() {
            self.eof_sent = true;
        }
        done
    }
}

impl Drop for SocketStream {
    fn drop(&mut self) {
        let (Some(mut messages), Some(control)) = (self.messages.take(), self.control.take())
        else {
            return;
        };
        let counts = self.counts.clone();
        // Without a runtime the process is ending and the connection goes with it.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            counts.open.fetch_sub(1, Ordering::Relaxed);
            return;
        };
        let eof_sent = self.eof_sent;
        runtime.spawn(async move {
            if !eof_sent {
                let _ = control.eof().await;
            }
            // Drain until the device's close removes the channel (the stream then ends).
            let drained = tokio::time::timeout(CLOSE_WAIT, async {
                while messages.next().await.is_some() {}
            })
            .await;
            if drained.is_err() {
                let _ = control.close().await;
                let n = counts.stranded.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::debug!(stranded = n, "the device did not close a socket channel");
            }
            counts.open.fetch_sub(1, Ordering::Relaxed);
        });
    }
}
