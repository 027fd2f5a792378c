//! Pushing blobs: mounted from another repository of the registry when
//! it holds them, else uploaded as they stream in: in one `PUT` by
//! default (what containerd does, and what ECR and the distribution
//! registry take), or in `PATCH` chunks of a fixed size for a registry
//! that caps request bodies.

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url};

use super::blobs::BlobStream;
use super::body::BlobBody;
use super::client::{Distribution, repository_arg};
use super::error::{Error, Result};
use super::hosts::origin;
use super::redact::redact;
use crate::reference::{self, Digest, Repository};

/// What [`Distribution::push_blob`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    /// Mounted from another repository of the same registry: no bytes sent.
    Mounted,
    /// Uploaded, this many bytes.
    Uploaded(u64),
}

/// One blob to push.
#[derive(Clone, Copy, Debug)]
pub struct BlobPush<'a> {
    pub repository: &'a str,
    pub digest: &'a str,
    /// Its size, when its descriptor says (announced as the body's length).
    pub size: Option<u64>,
    /// Another repository of the registry to mount it from.
    pub mount_from: Option<&'a str>,
    /// Upload blobs larger than this in chunks of this size; `None`: in
    /// one request whatever their size.
    pub chunk_size: Option<usize>,
}

/// Where an upload session writes, once started.
struct Session<'a> {
    repository: &'a Repository,
    digest: &'a Digest,
    location: Url,
}

impl Distribution {
    /// Puts a blob into its repository: mounted when `mount_from` holds
    /// it, else uploaded from `body`.
    pub async fn push_blob<'b>(
        &self,
        push: BlobPush<'_>,
        body: impl FnOnce() -> futures::future::BoxFuture<'b, Result<BlobStream>>,
    ) -> Result<Pushed> {
        let repository = &repository_arg(push.repository)?;
        let digest = &Digest::parse(push.digest, "the digest asked for")?;
        let mount_from = match push.mount_from {
            Some(from) => Some(Repository::parse(from, "the repository to mount from")?),
            None => None,
        };
        let mut start = self.url(&reference::uploads_path(repository));
        if let Some(from) = &mount_from {
            start
                .query_pairs_mut()
                .append_pair("mount", digest.as_str())
                .append_pair("from", from.as_str());
        }
        let response = self
            .send(
                Method::POST,
                start.clone(),
                repository,
                true,
                HeaderMap::new(),
                Some(Bytes::new()),
            )
            .await?;
        if response.status() == StatusCode::CREATED && mount_from.is_some() {
            return Ok(Pushed::Mounted);
        }
        let session = Session {
            repository,
            digest,
            location: self.location(&response, &start)?,
        };
        let stream = body().await?;
        let uploaded = match push.chunk_size {
            Some(chunk_size) if push.size.is_none_or(|size| size > chunk_size as u64) => {
                self.upload_chunks(session, stream, chunk_size.max(1))
                    .await?
            }
            _ => self.upload_whole(session, stream, push.size).await?,
        };
        Ok(Pushed::Uploaded(uploaded))
    }

    /// The whole blob in the `PUT` that ends the session, streamed.
    async fn upload_whole(
        &self,
        session: Session<'_>,
        stream: BlobStream,
        size: Option<u64>,
    ) -> Result<u64> {
        let (body, sent) = BlobBody::new(stream, size);
        let mut location = session.location;
        location
            .query_pairs_mut()
            .append_pair("digest", session.digest.as_str());
        let put = self
            .send_streamed(
                Method::PUT,
                location,
                session.repository,
                octet_stream(),
                reqwest::Body::wrap(body),
            )
            .await;
        // The stream's own error (a digest that does not match, upstream
        // cut) says more than the HTTP client's "body failed".
        if let Some(failure) = sent.take_failure() {
            return Err(failure);
        }
        put?;
        Ok(sent.bytes())
    }

    /// The blob in `PATCH` chunks of `chunk_size` (each buffered), then
    /// the `PUT` that ends the session with what is left.
    async fn upload_chunks(
        &self,
        session: Session<'_>,
        mut stream: BlobStream,
        chunk_size: usize,
    ) -> Result<u64> {
        let Session {
            repository,
            digest,
            mut location,
        } = session;
        let mut sent: u64 = 0;
        let mut buffer = BytesMut::new();
        loop {
            let next = stream.next().await.transpose()?;
            if let Some(bytes) = &next {
                buffer.extend_from_slice(bytes);
            }
            while buffer.len() >= chunk_size || (next.is_none() && !buffer.is_empty()) {
                let take = buffer.len().min(chunk_size);
                let chunk = buffer.split_to(take).freeze();
                let mut headers = octet_stream();
                let range = format!("{sent}-{}", sent + chunk.len() as u64 - 1);
                if let Ok(value) = HeaderValue::from_str(&range) {
                    headers.insert(header::CONTENT_RANGE, value);
                }
                sent += chunk.len() as u64;
                let response = self
                    .send(
                        Method::PATCH,
                        location.clone(),
                        repository,
                        true,
                        headers,
                        Some(chunk),
                    )
                    .await?;
                location = self.location(&response, &location)?;
            }
            if next.is_none() {
                break;
            }
        }
        location
            .query_pairs_mut()
            .append_pair("digest", digest.as_str());
        self.send(
            Method::PUT,
            location,
            repository,
            true,
            octet_stream(),
            Some(Bytes::new()),
        )
        .await?;
        Ok(sent)
    }

    fn location(&self, response: &reqwest::Response, from: &Url) -> Result<Url> {
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Error::Invalid {
                url: redact(from),
                message: "upload answer has no Location".into(),
            })?;
        let location = from.join(location).map_err(|e| Error::Invalid {
            url: redact(from),
            message: format!("the upload Location is not a URL: {e}"),
        })?;
        if !self.same_origin(&location) {
            return Err(Error::OffHost {
                url: redact(from),
                message: format!(
                    "the upload Location names another host ({})",
                    origin(&location)
                ),
            });
        }
        Ok(location)
    }
}

fn octet_stream() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers
}
