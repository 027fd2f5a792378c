//! Which target repository holds each blob, settled once per blob for the
//! whole run: the first copy that needs a blob finds a holder or uploads
//! it, and every other copy of the same blob, running at the same time or
//! later, waits for that and mounts from the holder. A layer shared by
//! many packages is so uploaded once, however many are copied at once.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::OnceCell;

/// Blob digest -> a repository of the target that holds it.
#[derive(Default)]
pub struct Holders {
    cells: Mutex<HashMap<String, Arc<OnceCell<String>>>>,
}

impl Holders {
    /// Records that `repository` holds `digest`, unless a holder is known.
    pub fn found(&self, digest: &str, repository: &str) {
        // An error only says a holder is known already.
        let _ = self.cell(digest).set(repository.to_string());
    }

    /// The repository holding `digest`: the one known, else the one
    /// `settle` returns (it finds one, or puts the blob in one). Callers
    /// asking at the same time wait for one `settle`; when it fails, the
    /// next caller tries its own.
    pub async fn holder<E, F, Fut>(&self, digest: &str, settle: F) -> Result<String, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<String, E>>,
    {
        let cell = self.cell(digest);
        cell.get_or_try_init(settle).await.cloned()
    }

    fn cell(&self, digest: &str) -> Arc<OnceCell<String>> {
        self.cells
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(digest.to_string())
            .or_default()
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Many copies of one blob at once: one settles it, the rest get its
    /// holder.
    #[tokio::test]
    async fn one_settle_per_blob_however_many_ask_at_once() {
        let holders = Holders::default();
        let settled = AtomicUsize::new(0);
        let asks = (0..16).map(|i| {
            let holders = &holders;
            let settled = &settled;
            async move {
                holders
                    .holder("sha256:a", || async move {
                        settled.fetch_add(1, Ordering::SeqCst);
                        tokio::task::yield_now().await;
                        Ok::<_, ()>(format!("repo-{i}"))
                    })
                    .await
            }
        });
        let got = futures::future::join_all(asks).await;
        assert_eq!(settled.load(Ordering::SeqCst), 1);
        let first = got[0].clone().expect("settled");
        assert!(got.iter().all(|g| g.as_ref() == Ok(&first)), "{got:?}");
    }

    #[tokio::test]
    async fn a_failed_settle_leaves_the_next_caller_to_try() {
        let holders = Holders::default();
        let failed: Result<String, &str> = holders.holder("d", || async { Err("down") }).await;
        assert_eq!(failed, Err("down"));
        let then: Result<String, &str> = holders.holder("d", || async { Ok("b".into()) }).await;
        assert_eq!(then.as_deref(), Ok("b"));
        holders.found("d", "c");
        let known: Result<String, &str> = holders.holder("d", || async { Ok("x".into()) }).await;
        assert_eq!(known.as_deref(), Ok("b"));
    }
}
