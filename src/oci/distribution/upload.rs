//! Pushing blobs: mounted from another repository of the registry when
//! it holds them, else uploaded in one request or in chunks.

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url};

use super::blobs::BlobStream;
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

impl Distribution {
    /// Puts a blob into `repository`: mounted from `mount_from` (another
    /// repository of this registry) when it holds it, else uploaded from
    /// `body`, in one request up to `chunk_size` bytes and in
    /// `chunk_size` chunks above that.
    pub async fn push_blob<'b>(
        &self,
        repository: &str,
        digest: &str,
        mount_from: Option<&str>,
        chunk_size: usize,
        body: impl FnOnce() -> futures::future::BoxFuture<'b, Result<BlobStream>>,
    ) -> Result<Pushed> {
        let repository = &repository_arg(repository)?;
        let digest = &Digest::parse(digest, "the digest asked for")?;
        let mount_from = match mount_from {
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
        let mut location = self.location(&response, &start)?;
        let mut stream = body().await?;
        let mut sent: u64 = 0;
        let mut buffer = BytesMut::new();
        let chunk_size = chunk_size.max(1);
        let mut chunked = false;
        loop {
            let next = stream.next().await.transpose()?;
            if let Some(bytes) = &next {
                buffer.extend_from_slice(bytes);
            }
            // Everything fits in one request: a monolithic PUT.
            if next.is_none() && !chunked {
                break;
            }
            while buffer.len() >= chunk_size || (next.is_none() && !buffer.is_empty()) {
                let take = buffer.len().min(chunk_size);
                let chunk = buffer.split_to(take).freeze();
                let mut headers = HeaderMap::new();
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                );
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
                chunked = true;
            }
            if next.is_none() {
                break;
            }
        }
        let body = buffer.freeze();
        let uploaded = sent + body.len() as u64;
        location
            .query_pairs_mut()
            .append_pair("digest", digest.as_str());
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        self.send(Method::PUT, location, repository, true, headers, Some(body))
            .await?;
        Ok(Pushed::Uploaded(uploaded))
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
