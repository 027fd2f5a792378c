//! A blob's stream holding one of the run's streaming slots until its
//! last byte is handed on.
//!
//! The slot bounds the uploads whose bodies are being read from upstream
//! and sent, not those waiting for the registry to commit what they sent:
//! a registry that stores the body before it hashes and writes it (ECR,
//! and the local stand-in's proxy) answers a while after the last byte,
//! and the next upload's bytes flow in that while instead of every upload
//! streaming at once and every commit landing together at the end.
//!
//! A blob of at most [`SMALL_BLOB`] bytes (a config, a package layer) takes
//! no slot: it is a round trip, not bandwidth, and queued behind the large
//! layers it would reach the registry last and hold up the manifests.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use tokio::sync::OwnedSemaphorePermit;

use crate::oci::distribution::BlobStream;

/// Blobs this small stream without a slot.
pub const SMALL_BLOB: u64 = 1024 * 1024;

/// Whether a blob of `size` bytes (unknown: `None`) streams in a slot.
pub fn needs_slot(size: Option<u64>) -> bool {
    size.is_none_or(|size| size > SMALL_BLOB)
}

/// `stream`, releasing `slot` once it has yielded `size` bytes, ended,
/// failed or been dropped, whichever comes first.
pub fn holding(
    stream: BlobStream,
    size: Option<u64>,
    slot: Option<OwnedSemaphorePermit>,
) -> BlobStream {
    Box::pin(Holding {
        stream,
        left: size,
        slot,
    })
}

struct Holding {
    stream: BlobStream,
    /// Bytes still to come, when the size is known.
    left: Option<u64>,
    slot: Option<OwnedSemaphorePermit>,
}

impl Stream for Holding {
    type Item = <BlobStream as Stream>::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let next = this.stream.as_mut().poll_next(cx);
        let done = match &next {
            Poll::Ready(Some(Ok(chunk))) => {
                this.left = this.left.map(|l| l.saturating_sub(chunk.len() as u64));
                this.left == Some(0)
            }
            Poll::Ready(Some(Err(_)) | None) => true,
            Poll::Pending => false,
        };
        if done {
            this.slot = None;
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use futures::StreamExt;
    use tokio::sync::Semaphore;

    use super::*;

    fn chunks(n: usize) -> BlobStream {
        Box::pin(futures::stream::iter(
            (0..n).map(|_| Ok(Bytes::from_static(b"abcd"))),
        ))
    }

    #[test]
    fn only_small_blobs_of_known_size_go_without_a_slot() {
        assert!(!needs_slot(Some(0)));
        assert!(!needs_slot(Some(SMALL_BLOB)));
        assert!(needs_slot(Some(SMALL_BLOB + 1)));
        assert!(needs_slot(None));
    }

    #[tokio::test]
    async fn the_slot_is_released_with_the_last_byte() {
        let slots = Arc::new(Semaphore::new(1));
        let slot = slots.clone().acquire_owned().await.ok();
        let mut stream = holding(chunks(2), Some(8), slot);
        assert!(stream.next().await.is_some());
        assert_eq!(slots.available_permits(), 0);
        // The last byte, not the end of the stream, frees the slot.
        assert!(stream.next().await.is_some());
        assert_eq!(slots.available_permits(), 1);
        assert!(stream.next().await.is_none());
    }

    #[tokio::test]
    async fn without_a_size_the_end_releases_it() {
        let slots = Arc::new(Semaphore::new(1));
        let slot = slots.clone().acquire_owned().await.ok();
        let mut stream = holding(chunks(1), None, slot);
        assert!(stream.next().await.is_some());
        assert_eq!(slots.available_permits(), 0);
        assert!(stream.next().await.is_none());
        assert_eq!(slots.available_permits(), 1);
    }

    #[tokio::test]
    async fn dropping_the_stream_releases_it() {
        let slots = Arc::new(Semaphore::new(1));
        let slot = slots.clone().acquire_owned().await.ok();
        drop(holding(chunks(3), Some(12), slot));
        assert_eq!(slots.available_permits(), 1);
    }
}
