//! Reading blobs: whether one is there, and its bytes as they arrive,
//! hashed chunk by chunk against their digest.

use bytes::Bytes;
use futures::Stream;
use reqwest::Method;
use reqwest::header::HeaderMap;

use super::client::{Distribution, repository_arg};
use super::error::{Result, http_error};
use super::redact::redact;
use crate::reference::{self, Digest};

/// A blob's bytes, as they arrive.
pub type BlobStream = std::pin::Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>>;

impl Distribution {
    /// Whether the registry holds a blob in `repository`.
    pub async fn has_blob(&self, repository: &str, digest: &str) -> Result<bool> {
        let repository = &repository_arg(repository)?;
        let digest = &Digest::parse(digest, "the digest asked for")?;
        let url = self.url(&reference::blob_path(repository, digest));
        match self
            .send(Method::HEAD, url, repository, false, HeaderMap::new(), None)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// A blob's bytes as they arrive (redirects followed, without our
    /// credentials on another host), hashed chunk by chunk: the stream
    /// ends with an error, not with its end, when they do not hash to
    /// `digest` (or are not `size` bytes), so nothing that consumes it
    /// commits them.
    pub async fn blob(
        &self,
        repository: &str,
        digest: &str,
        size: Option<u64>,
    ) -> Result<BlobStream> {
        let checked = Digest::parse(digest, "the digest asked for")?;
        let response = self.open_blob(repository, digest).await?;
        let url = redact(response.url());
        let what = format!("blob {repository}@{checked}");
        let state = (Some(response), Some(checked.verifier()));
        Ok(Box::pin(futures::stream::unfold(
            state,
            move |(response, verifier)| {
                let url = url.clone();
                let what = what.clone();
                async move {
                    let mut response = response?;
                    let mut verifier = verifier?;
                    match response.chunk().await {
                        Ok(Some(chunk)) => {
                            verifier.update(&chunk);
                            if let Some(size) = size.filter(|s| verifier.len() > *s) {
                                let e = reference::Error::Size {
                                    what,
                                    expected: size,
                                    actual: verifier.len(),
                                };
                                return Some((Err(e.into()), (None, None)));
                            }
                            Some((Ok(chunk), (Some(response), Some(verifier))))
                        }
                        Ok(None) => {
                            let len = verifier.len();
                            let checked = match size.filter(|s| *s != len) {
                                Some(expected) => Err(reference::Error::Size {
                                    what,
                                    expected,
                                    actual: len,
                                }),
                                None => verifier.finish(what),
                            };
                            checked.err().map(|e| (Err(e.into()), (None, None)))
                        }
                        Err(source) => {
                            Some((Err(http_error(Method::GET, url, source)), (None, None)))
                        }
                    }
                }
            },
        )))
    }

    /// A blob's response, for callers that read it themselves.
    pub async fn open_blob(&self, repository: &str, digest: &str) -> Result<reqwest::Response> {
        let repository = &repository_arg(repository)?;
        let digest = &Digest::parse(digest, "the digest asked for")?;
        let url = self.url(&reference::blob_path(repository, digest));
        self.send(Method::GET, url, repository, false, HeaderMap::new(), None)
            .await
    }
}
