//! Hashing a blob's bytes on a thread of their own while they stream, so
//! the async workers only move bytes: a gigabyte of SHA-256 is about half a
//! second of CPU, which inline would stall every other transfer of the
//! worker it runs on.
//!
//! The chunks are the ones the stream hands on (`Bytes` clones, no copy);
//! a bounded queue holds the stream back when hashing falls behind, so
//! memory stays flat whatever the blob's size.

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::reference::{self, Verifier};

/// Chunks queued for the hashing thread before the stream waits for it.
const QUEUED_CHUNKS: usize = 4;

/// A blob being hashed on a blocking thread.
pub(super) struct Hashing {
    chunks: mpsc::Sender<Bytes>,
    verdict: oneshot::Receiver<Result<(), reference::Error>>,
}

impl Hashing {
    /// Starts the thread; `what` names the blob in a mismatch.
    pub(super) fn start(mut verifier: Verifier, what: String) -> Self {
        let (chunks, mut queue) = mpsc::channel::<Bytes>(QUEUED_CHUNKS);
        let (answer, verdict) = oneshot::channel();
        tokio::task::spawn_blocking(move || {
            while let Some(chunk) = queue.blocking_recv() {
                verifier.update(&chunk);
            }
            // The receiver is gone only when the stream was dropped.
            let _ = answer.send(verifier.finish(what));
        });
        Self { chunks, verdict }
    }

    /// Hands one chunk to the thread, waiting while its queue is full.
    pub(super) async fn feed(&self, chunk: Bytes) {
        // The thread stops only once this sender is dropped, so a send
        // cannot fail while `self` lives.
        let _ = self.chunks.send(chunk).await;
    }

    /// Whether everything fed hashes to the digest.
    pub(super) async fn finish(self) -> Result<(), HashingError> {
        drop(self.chunks);
        self.verdict
            .await
            .map_err(|_| HashingError::Stopped)?
            .map_err(HashingError::Mismatch)
    }
}

/// Why a hashed stream failed its check.
#[derive(Debug, thiserror::Error)]
pub(super) enum HashingError {
    #[error(transparent)]
    Mismatch(reference::Error),
    /// The hashing thread ended without a verdict (it panicked).
    #[error("the blob's hashing thread stopped before its end")]
    Stopped,
}
