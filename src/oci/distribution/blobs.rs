//! Reading blobs: whether one is there, and its bytes as they arrive,
//! checked against their digest.

use bytes::Bytes;
use futures::Stream;
use reqwest::Method;
use reqwest::header::HeaderMap;

use super::client::{Distribution, repository_arg};
use super::error::{Error, Result, http_error};
use super::hashing::{Hashing, HashingError};
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
    /// credentials on another host), hashed on a thread of their own
    /// (`hashing`): the stream ends with an error, not with its end,
    /// when they do not hash to `digest` (or are not `size` bytes), and it
    /// holds its last chunk back until the hash is known, so nothing that
    /// consumes it can send a whole blob that fails its check.
    pub async fn blob(
        &self,
        repository: &str,
        digest: &str,
        size: Option<u64>,
    ) -> Result<BlobStream> {
        let checked = Digest::parse(digest, "the digest asked for")?;
        let response = self.open_blob(repository, digest).await?;
        let what = format!("blob {repository}@{checked}");
        let reading = Reading {
            url: redact(response.url()),
            response,
            hashing: Some(Hashing::start(checked.verifier(), what.clone())),
            what,
            size,
            len: 0,
            held: None,
        };
        Ok(Box::pin(futures::stream::unfold(
            Some(reading),
            |reading| async move {
                let mut reading = reading?;
                match reading.next().await {
                    Step::Chunk(chunk) => Some((Ok(chunk), Some(reading))),
                    Step::Last(chunk) => Some((Ok(chunk), None)),
                    Step::Failed(e) => Some((Err(e), None)),
                    Step::End => None,
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

/// A blob being read and checked.
struct Reading {
    response: reqwest::Response,
    /// Until the end of the body.
    hashing: Option<Hashing>,
    url: String,
    what: String,
    size: Option<u64>,
    len: u64,
    /// The latest chunk, handed on once the next arrives (or, for the last
    /// one, once the hash is known).
    held: Option<Bytes>,
}

/// What reading a blob yields next.
enum Step {
    Chunk(Bytes),
    Last(Bytes),
    Failed(Error),
    End,
}

impl Reading {
    async fn next(&mut self) -> Step {
        loop {
            match self.response.chunk().await {
                Ok(Some(chunk)) => {
                    self.len += chunk.len() as u64;
                    if let Some(expected) = self.size.filter(|s| self.len > *s) {
                        return Step::Failed(self.wrong_size(expected));
                    }
                    if let Some(hashing) = &self.hashing {
                        hashing.feed(chunk.clone()).await;
                    }
                    if let Some(previous) = self.held.replace(chunk) {
                        return Step::Chunk(previous);
                    }
                }
                Ok(None) => return self.end().await,
                Err(source) => {
                    return Step::Failed(http_error(Method::GET, self.url.clone(), source));
                }
            }
        }
    }

    /// The end of the body: the held chunk once the size and hash check.
    async fn end(&mut self) -> Step {
        if let Some(expected) = self.size.filter(|s| *s != self.len) {
            return Step::Failed(self.wrong_size(expected));
        }
        let Some(hashing) = self.hashing.take() else {
            return Step::End;
        };
        match hashing.finish().await {
            Ok(()) => self.held.take().map_or(Step::End, Step::Last),
            Err(HashingError::Mismatch(e)) => Step::Failed(e.into()),
            Err(e @ HashingError::Stopped) => Step::Failed(Error::Invalid {
                url: self.url.clone(),
                message: e.to_string(),
            }),
        }
    }

    fn wrong_size(&self, expected: u64) -> Error {
        reference::Error::Size {
            what: self.what.clone(),
            expected,
            actual: self.len,
        }
        .into()
    }
}
