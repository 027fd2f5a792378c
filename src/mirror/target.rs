//! The ECR registry `mirror` writes into: repositories through the ECR API,
//! images through the registry's OCI distribution API with the
//! `GetAuthorizationToken` token, as `docker push` does.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_sdk_ecr::error::ProvideErrorMetadata;
use aws_sdk_ecr::types::{
    EncryptionConfiguration, EncryptionType, ImageScanningConfiguration, ImageTagMutability,
};

use super::error::Error;
use crate::aws::RegistryRef;
use crate::oci::distribution::{self, Auth, Distribution};
use crate::registry::ecr::{REGISTRY_ENDPOINT_ENV, registry_endpoint};

/// How repositories `mirror` creates are set up.
#[derive(Clone, Debug, Default)]
pub struct RepositoryOptions {
    pub immutable_tags: bool,
    pub scan_on_push: bool,
    /// A KMS key (ARN, id or alias) to encrypt with instead of AES-256.
    pub kms_key: Option<String>,
}

/// The ECR registry of a run: its API and its data plane.
pub struct Target {
    registry: RegistryRef,
    client: aws_sdk_ecr::Client,
    data: Distribution,
}

impl Target {
    /// Connects with the default AWS credential chain (and endpoint
    /// settings such as `AWS_ENDPOINT_URL_ECR`). The data plane is
    /// `registry_host` when given, else `ECR_REGISTRY_ENDPOINT`, else the
    /// endpoint the token names.
    pub async fn connect(
        registry: RegistryRef,
        registry_host: Option<&str>,
        timeout: Duration,
    ) -> Result<Self, Error> {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .region(aws_config::Region::new(registry.region.clone()))
            .load()
            .await;
        let client = aws_sdk_ecr::Client::new(&config);
        let out = client
            .get_authorization_token()
            .send()
            .await
            .map_err(|e| Error::Ecr {
                operation: "GetAuthorizationToken",
                source: Box::new(e),
            })?;
        let data = out.authorization_data().first();
        let token = data
            .and_then(|d| d.authorization_token())
            .ok_or(Error::NoToken)?;
        let endpoint = match (registry_host, std::env::var(REGISTRY_ENDPOINT_ENV).ok()) {
            (Some(host), _) => {
                let scheme = if distribution::is_plain_http(host) {
                    "http"
                } else {
                    "https"
                };
                format!("{scheme}://{host}")
            }
            (None, Some(endpoint)) if !endpoint.trim().is_empty() => {
                endpoint.trim_end_matches('/').to_string()
            }
            _ => registry_endpoint(data.and_then(|d| d.proxy_endpoint()), &registry),
        };
        let data =
            Distribution::with_endpoint(&endpoint, Auth::Header(format!("Basic {token}")), timeout)
                .map_err(Error::target)?;
        Ok(Self {
            registry,
            client,
            data,
        })
    }

    /// The registry's data plane.
    pub fn data(&self) -> &Distribution {
        &self.data
    }

    /// Whether a repository exists.
    pub async fn has_repository(&self, name: &str) -> Result<bool, Error> {
        let described = self
            .client
            .describe_repositories()
            .registry_id(&self.registry.account_id)
            .repository_names(name)
            .send()
            .await;
        match described {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("RepositoryNotFoundException") => Ok(false),
            Err(e) => Err(Error::Repository {
                operation: "DescribeRepositories",
                repository: name.to_string(),
                source: Box::new(e),
            }),
        }
    }

    /// Creates a repository; one that already exists is left as it is.
    pub async fn create_repository(
        &self,
        name: &str,
        options: &RepositoryOptions,
    ) -> Result<(), Error> {
        let mut request = self
            .client
            .create_repository()
            .registry_id(&self.registry.account_id)
            .repository_name(name)
            .image_tag_mutability(if options.immutable_tags {
                ImageTagMutability::Immutable
            } else {
                ImageTagMutability::Mutable
            })
            .image_scanning_configuration(
                ImageScanningConfiguration::builder()
                    .scan_on_push(options.scan_on_push)
                    .build(),
            );
        if let Some(key) = &options.kms_key {
            let encryption = EncryptionConfiguration::builder()
                .encryption_type(EncryptionType::Kms)
                .kms_key(key)
                .build()
                .map_err(|e| Error::Repository {
                    operation: "CreateRepository",
                    repository: name.to_string(),
                    source: Box::new(e),
                })?;
            request = request.encryption_configuration(encryption);
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("RepositoryAlreadyExistsException") => Ok(()),
            Err(e) => Err(Error::Repository {
                operation: "CreateRepository",
                repository: name.to_string(),
                source: Box::new(e),
            }),
        }
    }

    /// Creates each repository, in order, saying so on stderr; returns
    /// those created.
    pub async fn create_repositories(
        &self,
        names: &[String],
        options: &RepositoryOptions,
    ) -> Result<Vec<String>, Error> {
        let mut created = Vec::new();
        for repository in names {
            self.create_repository(repository, options).await?;
            eprintln!("created repository {repository}");
            created.push(repository.clone());
        }
        Ok(created)
    }
}
