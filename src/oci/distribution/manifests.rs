//! Manifests: read (checked against the digest asked for and the one the
//! registry reports), resolved to a digest, listed as referrers, stored.

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::{self, HeaderMap, HeaderValue};
use serde::Deserialize;

use super::client::{
    Distribution, MAX_MANIFEST_BYTES, accept_manifests, content_type, json, read_bounded,
    reference_arg, reported_digest, repository_arg,
};
use super::error::{Error, Result};
use super::redact::redact;
use crate::oci::xpkg::{Descriptor, Manifest, OCI_INDEX};
use crate::reference::{self, Digest};

impl Distribution {
    /// The manifest a tag or digest names and its digest, checked against
    /// the digest asked for and the one the registry reports; `None` when
    /// there is none.
    pub async fn manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<(String, Manifest)>> {
        let repository = &repository_arg(repository)?;
        let reference = &reference_arg(reference)?;
        let url = self.url(&reference::manifest_path(repository, reference));
        let response = match self
            .send(
                Method::GET,
                url.clone(),
                repository,
                false,
                accept_manifests(),
                None,
            )
            .await
        {
            Err(e) if e.is_not_found() => return Ok(None),
            other => other?,
        };
        if response
            .content_length()
            .is_some_and(|l| l > MAX_MANIFEST_BYTES)
        {
            return Err(Error::Invalid {
                url: redact(&url),
                message: format!("manifest larger than {MAX_MANIFEST_BYTES} bytes"),
            });
        }
        let media_type = content_type(response.headers());
        let reported = reported_digest(response.headers());
        let bytes = read_bounded(response, &url, MAX_MANIFEST_BYTES).await?;
        let what = format!("manifest {}", redact(&url));
        if let Some(asked) = reference.digest() {
            asked.verify(&bytes, &what)?;
        }
        let reported = match reported {
            Some(r) => Some(Digest::parse(
                &r,
                format!("the Docker-Content-Digest of {}", redact(&url)),
            )?),
            None => None,
        };
        if let Some(reported) = &reported {
            reported.verify(&bytes, format!("{what} (as the registry reports it)"))?;
        }
        let manifest = Manifest::new(media_type.as_deref(), bytes.to_vec());
        let digest = match reference.digest() {
            Some(asked) => asked.to_string(),
            None => manifest.digest(),
        };
        Ok(Some((digest, manifest)))
    }

    /// The digest a tag or digest names, when it exists (HEAD).
    pub async fn manifest_digest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<String>> {
        let repository = &repository_arg(repository)?;
        let reference = &reference_arg(reference)?;
        let url = self.url(&reference::manifest_path(repository, reference));
        match self
            .send(
                Method::HEAD,
                url.clone(),
                repository,
                false,
                accept_manifests(),
                None,
            )
            .await
        {
            Ok(response) => match reported_digest(response.headers()) {
                Some(reported) => Ok(Some(
                    Digest::parse(
                        &reported,
                        format!("the Docker-Content-Digest of {}", redact(&url)),
                    )?
                    .to_string(),
                )),
                None => Ok(reference.digest().map(Digest::to_string)),
            },
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The manifests that name `digest` as their subject (OCI 1.1 referrers
    /// API); `None` when the registry does not offer the API.
    pub async fn referrers(
        &self,
        repository: &str,
        digest: &str,
    ) -> Result<Option<Vec<Descriptor>>> {
        #[derive(Deserialize)]
        struct Index {
            #[serde(default)]
            manifests: Vec<Descriptor>,
        }
        let repository = &repository_arg(repository)?;
        let digest = &Digest::parse(digest, "the digest asked for")?;
        let url = self.url(&reference::referrers_path(repository, digest));
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static(OCI_INDEX));
        match self
            .send(Method::GET, url.clone(), repository, false, headers, None)
            .await
        {
            Ok(response) => {
                let manifests = json::<Index>(response, &url).await?.manifests;
                for (i, m) in manifests.iter().enumerate() {
                    Digest::parse(&m.digest, format!("referrer {i} of {repository}@{digest}"))?;
                }
                Ok(Some(manifests))
            }
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Stores a manifest under a tag or its digest, byte for byte.
    pub async fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        manifest: &Manifest,
    ) -> Result<()> {
        let repository = &repository_arg(repository)?;
        let reference = &reference_arg(reference)?;
        if let Some(digest) = reference.digest() {
            digest.verify(&manifest.bytes, format!("manifest {repository}@{digest}"))?;
        }
        let url = self.url(&reference::manifest_path(repository, reference));
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(&manifest.media_type) {
            headers.insert(header::CONTENT_TYPE, value);
        }
        let body = Bytes::from(manifest.bytes.clone());
        let response = self
            .send(
                Method::PUT,
                url.clone(),
                repository,
                true,
                headers,
                Some(body),
            )
            .await?;
        let want = manifest.digest();
        match reported_digest(response.headers()) {
            Some(got) if got != want => Err(Error::Invalid {
                url: url.to_string(),
                message: format!("the registry stored {got}, not {want}"),
            }),
            _ => Ok(()),
        }
    }
}
