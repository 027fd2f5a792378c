//! A blob's stream as the body of one upload request: handed to the HTTP
//! client chunk by chunk as it arrives (nothing buffered, nothing copied),
//! with its length announced when it is known.
//!
//! The stream checks the blob's digest ([`super::Distribution::blob`])
//! and holds its last chunk back until the check passes, so a blob that
//! fails it never reaches its end here: the request fails, and the
//! stream's own error, kept in [`Sent`], is what the caller reports.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};

use super::blobs::BlobStream;
use super::error::Error;

/// What went into an upload's body: bytes, and the stream's error if it
/// failed.
#[derive(Default)]
pub(super) struct Sent {
    bytes: AtomicU64,
    failure: Mutex<Option<Error>>,
}

impl Sent {
    pub(super) fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// The stream's own error, if it is why the request failed.
    pub(super) fn take_failure(&self) -> Option<Error> {
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// The body of an upload request.
pub(super) struct BlobBody {
    /// Polled through `get_mut`, never locked: the mutex only makes the
    /// body `Sync`, which the HTTP client asks of a streamed body.
    stream: Mutex<BlobStream>,
    size: Option<u64>,
    sent: Arc<Sent>,
}

impl BlobBody {
    pub(super) fn new(stream: BlobStream, size: Option<u64>) -> (Self, Arc<Sent>) {
        let sent = Arc::new(Sent::default());
        let body = Self {
            stream: Mutex::new(stream),
            size,
            sent: sent.clone(),
        };
        (body, sent)
    }
}

/// What the HTTP client is told when the stream fails; the caller reports
/// the stream's own error instead.
#[derive(Debug, thiserror::Error)]
#[error("the blob's stream failed")]
pub(super) struct StreamFailed;

impl http_body::Body for BlobBody {
    type Data = Bytes;
    type Error = StreamFailed;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, StreamFailed>>> {
        let this = self.get_mut();
        let stream = this
            .stream
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        match stream.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.sent
                    .bytes
                    .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            Poll::Ready(Some(Err(e))) => {
                *this
                    .sent
                    .failure
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(e);
                Poll::Ready(Some(Err(StreamFailed)))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn size_hint(&self) -> SizeHint {
        self.size.map(SizeHint::with_exact).unwrap_or_default()
    }
}
