//! The ECR API side of an [`EcrRegistry`]: `ListImages`, `BatchGetImage`
//! and `GetAuthorizationToken` through the AWS SDK, and what their failures
//! mean.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use aws_sdk_ecr::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ecr::operation::batch_get_image::builders::BatchGetImageFluentBuilder;
use aws_sdk_ecr::types::{ImageFailureCode, ImageIdentifier, ListImagesFilter, TagStatus};

use super::blobs::registry_endpoint;
use super::client::{EcrRegistry, Token};
use super::counters::Operation;
use super::options::{MAX_LIST_PAGES, TOKEN_MARGIN, TOKEN_MIN_LIFE};
use crate::error::{Error, Result};
use crate::oci::blob;
use crate::oci::xpkg::{DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, Manifest, OCI_INDEX, OCI_MANIFEST};
use crate::reference::Reference;
use crate::registry::{ListedTag, Tags};

impl EcrRegistry {
    /// A `BatchGetImage` in `repository` that accepts every manifest and
    /// index media type a package or its signatures may use.
    pub(super) fn batch_get_manifests(&self, repository: &str) -> BatchGetImageFluentBuilder {
        self.client
            .batch_get_image()
            .registry_id(&self.registry.account_id)
            .repository_name(repository)
            .accepted_media_types(OCI_MANIFEST)
            .accepted_media_types(OCI_INDEX)
            .accepted_media_types(DOCKER_MANIFEST)
            .accepted_media_types(DOCKER_MANIFEST_LIST)
    }

    /// Maps an SDK failure to the project's error.
    pub(super) fn sdk_error<E>(
        &self,
        operation: &str,
        repository: &str,
        reference: Option<&str>,
        err: SdkError<E>,
    ) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        if let SdkError::ServiceError(service) = &err {
            let e = service.err();
            let code = e.code().unwrap_or("Unknown");
            let message = e.message().unwrap_or("").to_string();
            let status = service.raw().status().as_u16();
            match code {
                "RepositoryNotFoundException" => {
                    return Error::RepositoryNotFound {
                        registry: self.registry_name(),
                        repository: repository.to_string(),
                    };
                }
                "InvalidParameterException" if reference.is_some() => {
                    return Error::ImageNotFound {
                        registry: self.registry_name(),
                        repository: repository.to_string(),
                        reference: reference.unwrap_or_default().to_string(),
                        message: format!("{code}: {message}"),
                    };
                }
                "InvalidParameterException" => {
                    return Error::RepositoryNotFound {
                        registry: self.registry_name(),
                        repository: repository.to_string(),
                    };
                }
                "AccessDeniedException" => {
                    return Error::AccessDenied {
                        registry: self.registry_name(),
                        operation: operation.to_string(),
                        message: format!("{code} (HTTP {status}): {message}"),
                    };
                }
                "UnrecognizedClientException"
                | "InvalidSignatureException"
                | "ExpiredTokenException"
                | "InvalidClientTokenId"
                | "MissingAuthenticationTokenException"
                | "IncompleteSignature" => {
                    return Error::Credentials(format!(
                        "{operation} on {} refused ({code}, HTTP {status}): {message}",
                        self.registry
                    ));
                }
                _ => {
                    return Error::Unavailable {
                        operation: operation.to_string(),
                        message: format!(
                            "{} answered {code} (HTTP {status}): {message}",
                            self.registry
                        ),
                    };
                }
            }
        }
        if is_credentials_error(&err) {
            return Error::Credentials(format!(
                "no usable AWS credentials for {operation} on {}: {}",
                self.registry,
                crate::error::error_chain(&err)
            ));
        }
        if matches!(err, SdkError::DispatchFailure(_)) && crate::error::is_unknown_host(&err) {
            return Error::UnknownHost {
                registry: self.registry_name(),
                operation: operation.to_string(),
                message: crate::error::error_chain(&err),
            };
        }
        let what = match &err {
            SdkError::TimeoutError(_) => "timed out",
            SdkError::DispatchFailure(_) => "could not reach the ECR API",
            SdkError::ResponseError(_) => "unreadable response",
            SdkError::ConstructionFailure(_) => "could not build the request",
            _ => "failed",
        };
        Error::Unavailable {
            operation: operation.to_string(),
            message: format!(
                "{what} ({}): {}",
                self.registry,
                crate::error::error_chain(&err)
            ),
        }
    }

    /// The manifest a tag or digest names, and its digest.
    pub(super) async fn manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<(String, Arc<Manifest>)> {
        // A tag or a digest of the grammar, nothing else; a digest is
        // verified whatever its algorithm (sha256 or sha512).
        let asked = Reference::parse(reference, "the reference asked for")
            .map_err(|e| self.invalid(repository, "", e.to_string()))?
            .digest()
            .cloned();
        let by_digest = asked.is_some();
        if by_digest && let Some(m) = self.cached_manifest(reference) {
            return Ok((reference.to_string(), m));
        }
        let id = if by_digest {
            ImageIdentifier::builder().image_digest(reference).build()
        } else {
            ImageIdentifier::builder().image_tag(reference).build()
        };
        self.counters.record(Operation::BatchGetImage);
        let out = self
            .batch_get_manifests(repository)
            .image_ids(id)
            .send()
            .await
            .map_err(|e| self.sdk_error("BatchGetImage", repository, Some(reference), e))?;
        let Some(image) = out.images().first() else {
            let failure = out.failures().first();
            let code = failure.and_then(|f| f.failure_code());
            let reason = failure
                .and_then(|f| f.failure_reason())
                .unwrap_or("no image and no failure reported");
            let message = match code {
                Some(c) => format!("{}: {reason}", c.as_str()),
                None => reason.to_string(),
            };
            return Err(match code {
                Some(
                    ImageFailureCode::UpstreamTooManyRequests
                    | ImageFailureCode::UpstreamUnavailable
                    | ImageFailureCode::KmsError,
                ) => Error::Unavailable {
                    operation: "BatchGetImage".into(),
                    message: format!("{repository}:{reference}: {message}"),
                },
                Some(ImageFailureCode::UpstreamAccessDenied) => Error::AccessDenied {
                    registry: self.registry_name(),
                    operation: "BatchGetImage".into(),
                    message: format!(
                        "the pull-through cache's upstream refused {repository}:{reference}: {message}"
                    ),
                },
                _ => Error::ImageNotFound {
                    registry: self.registry_name(),
                    repository: repository.to_string(),
                    reference: reference.to_string(),
                    message,
                },
            });
        };
        let bytes = image
            .image_manifest()
            .ok_or_else(|| {
                self.invalid(repository, reference, "BatchGetImage returned no manifest")
            })?
            .as_bytes()
            .to_vec();
        let digest = blob::sha256_digest(&bytes);
        if let Some(reported) = image.image_id().and_then(|id| id.image_digest())
            && reported != digest
        {
            return Err(self.invalid(
                repository,
                reported,
                format!("manifest bytes hash to {digest}, not to the digest ECR reports"),
            ));
        }
        if let Some(asked) = &asked {
            asked
                .verify(&bytes, format!("manifest {repository}@{asked}"))
                .map_err(|e| self.invalid(repository, reference, e.to_string()))?;
        }
        let digest = asked.map_or(digest, |d| d.to_string());
        let manifest = Arc::new(Manifest::new(image.image_manifest_media_type(), bytes));
        self.manifests.insert(digest.clone(), manifest.clone());
        Ok((digest, manifest))
    }

    pub(super) fn cached_manifest(&self, digest: &str) -> Option<Arc<Manifest>> {
        self.manifests.get(digest)
    }

    /// An authorization header and data-plane endpoint, cached until shortly
    /// before the token expires.
    pub(super) async fn token(&self) -> Result<Arc<Token>> {
        let mut slot = self.token.lock().await;
        if let Some(t) = slot.as_ref()
            && Instant::now() < t.refresh_at
        {
            return Ok(t.clone());
        }
        self.counters.record(Operation::GetAuthorizationToken);
        let out = self
            .client
            .get_authorization_token()
            .send()
            .await
            .map_err(|e| self.sdk_error("GetAuthorizationToken", "", None, e))?;
        let data = out
            .authorization_data()
            .first()
            .ok_or_else(|| Error::Unavailable {
                operation: "GetAuthorizationToken".into(),
                message: "no authorization data in the answer".into(),
            })?;
        let token = data
            .authorization_token()
            .ok_or_else(|| Error::Unavailable {
                operation: "GetAuthorizationToken".into(),
                message: "no authorization token in the answer".into(),
            })?;
        let endpoint = match &self.options.registry_endpoint {
            Some(e) => e.trim_end_matches('/').to_string(),
            None => {
                let proxy = data.proxy_endpoint().map(str::to_string);
                registry_endpoint(proxy.as_deref(), &self.registry)
            }
        };
        let life = data
            .expires_at()
            .and_then(|at| SystemTime::try_from(*at).ok())
            .and_then(|at| at.duration_since(SystemTime::now()).ok())
            .map(|left| left.saturating_sub(TOKEN_MARGIN))
            .unwrap_or_default()
            .max(TOKEN_MIN_LIFE);
        let token = Arc::new(Token {
            authorization: format!("Basic {token}"),
            endpoint,
            refresh_at: Instant::now() + life,
        });
        *slot = Some(token.clone());
        Ok(token)
    }

    pub(super) async fn forget_token(&self, stale: &Arc<Token>) {
        let mut slot = self.token.lock().await;
        if slot.as_ref().is_some_and(|t| Arc::ptr_eq(t, stale)) {
            *slot = None;
        }
    }

    /// Every tag of a repository: `ListImages`, tagged images only, every
    /// page; each with the `imageDigest` listed beside it, which spares the
    /// resolver a `BatchGetImage` by tag (`Tags::listed` keeps only
    /// well-formed digests a listing agrees with itself about).
    pub(super) async fn list_tags_pages(&self, repository: &str) -> Result<Tags> {
        let mut tags: Vec<ListedTag> = Vec::new();
        let mut next: Option<String> = None;
        for _ in 0..MAX_LIST_PAGES {
            self.counters.record(Operation::ListImages);
            let page = self
                .client
                .list_images()
                .registry_id(&self.registry.account_id)
                .repository_name(repository)
                .filter(
                    ListImagesFilter::builder()
                        .tag_status(TagStatus::Tagged)
                        .build(),
                )
                .max_results(1000)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| self.sdk_error("ListImages", repository, None, e))?;
            tags.extend(page.image_ids().iter().filter_map(|id| {
                Some(ListedTag {
                    tag: id.image_tag()?.to_string(),
                    digest: id.image_digest().map(str::to_string),
                })
            }));
            match page.next_token() {
                Some(t) if !t.is_empty() => next = Some(t.to_string()),
                _ => return Ok(Tags::listed(tags)),
            }
        }
        Err(Error::Unavailable {
            operation: "ListImages".into(),
            message: format!("{repository} has more than {MAX_LIST_PAGES} pages of tags"),
        })
    }
}

fn is_credentials_error<E: std::error::Error + 'static>(err: &SdkError<E>) -> bool {
    use aws_credential_types::provider::error::CredentialsError;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if e.downcast_ref::<CredentialsError>().is_some() {
            return true;
        }
        source = e.source();
    }
    false
}
