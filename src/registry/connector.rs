//! [`Connector`]s: where a RunFunction call gets its registry from.
//!
//! Registries (and so their caches and their AWS clients) outlive a single
//! RunFunction call: [`EcrConnector`] keeps one per (registry, credentials
//! identity) for the life of the process, so an unchanged XR costs no AWS
//! calls on the next reconcile.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::cache::{CacheOptions, CachedRegistry};
use super::credentials::AwsCredentials;
use super::ecr::{CallCounts, EcrOptions, EcrRegistry};
#[cfg(any(test, feature = "test-support"))]
use super::memory::MemoryRegistry;
use super::{Connector, Registry};
use crate::aws::RegistryRef;
use crate::error::{Error, Result};

/// Most (registry, credentials) clients kept; the least recently used go
/// first (rotating session credentials would otherwise pile up).
pub const MAX_CLIENTS: u64 = 64;

type ClientKey = (RegistryRef, Option<String>);

/// Connects to ECR, one cached client per (registry, credentials identity).
/// Clients are made once per key however many calls ask at the same time,
/// with no lock held while one is being made.
pub struct EcrConnector {
    options: EcrOptions,
    cache: CacheOptions,
    clients: moka::future::Cache<ClientKey, CachedRegistry<EcrRegistry>>,
}

impl EcrConnector {
    /// Options from the environment (`ECR_REGISTRY_ENDPOINT`), default bounds.
    pub fn new() -> Self {
        Self::with_options(EcrOptions::from_env(), CacheOptions::default())
    }

    pub fn with_options(options: EcrOptions, cache: CacheOptions) -> Self {
        Self {
            options,
            cache,
            clients: moka::future::Cache::new(MAX_CLIENTS),
        }
    }

    /// Calls made by every client so far, by registry (one row per
    /// credentials identity). Identities are not included.
    pub async fn call_counts(&self) -> Vec<(RegistryRef, CallCounts)> {
        self.clients.run_pending_tasks().await;
        let mut rows: Vec<_> = self
            .clients
            .iter()
            .map(|(key, c)| (key.0.clone(), c.inner().calls()))
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        rows
    }
}

impl Default for EcrConnector {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Connector for EcrConnector {
    async fn connect(
        &self,
        registry: &RegistryRef,
        credentials: Option<&AwsCredentials>,
        tag_ttl: Duration,
    ) -> Result<Arc<dyn Registry>> {
        let key = (registry.clone(), credentials.map(AwsCredentials::identity));
        let make = async {
            let ecr =
                EcrRegistry::with_options(registry.clone(), credentials, self.options.clone())
                    .await?;
            Ok::<_, Error>(CachedRegistry::new(
                Arc::new(ecr),
                CacheOptions {
                    tag_ttl,
                    ..self.cache
                },
            ))
        };
        let cached = self
            .clients
            .try_get_with(key, make)
            .await
            .map_err(|e| Error::clone(&e))?;
        cached.set_tag_ttl(tag_ttl);
        Ok(Arc::new(cached))
    }
}

/// Connects every registry to one in-memory registry, behind a cache that
/// lives as long as the connector (as the ECR one does). A test double: only
/// in unit tests and with the `test-support` feature.
#[cfg(any(test, feature = "test-support"))]
pub struct MemoryConnector {
    registry: CachedRegistry<MemoryRegistry>,
}

#[cfg(any(test, feature = "test-support"))]
impl MemoryConnector {
    pub fn new(memory: Arc<MemoryRegistry>) -> Self {
        Self {
            // Tests switch the memory registry off and on between calls and
            // expect the next call to see it: failures are not remembered.
            registry: CachedRegistry::new(memory, CacheOptions::forgetting_failures()),
        }
    }

    pub fn memory(&self) -> &Arc<MemoryRegistry> {
        self.registry.inner()
    }
}

#[cfg(any(test, feature = "test-support"))]
#[async_trait]
impl Connector for MemoryConnector {
    async fn connect(
        &self,
        _registry: &RegistryRef,
        _credentials: Option<&AwsCredentials>,
        tag_ttl: Duration,
    ) -> Result<Arc<dyn Registry>> {
        self.registry.set_tag_ttl(tag_ttl);
        Ok(Arc::new(self.registry.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::PackageMeta;

    #[tokio::test]
    async fn memory_connector_keeps_its_cache_across_connects() {
        let mem = Arc::new(MemoryRegistry::new());
        mem.push("a/b", "v1", PackageMeta::default());
        let connector = MemoryConnector::new(mem.clone());
        let r = RegistryRef::new("111122223333", "us-east-1");
        for _ in 0..3 {
            let reg = connector
                .connect(&r, None, Duration::from_secs(60))
                .await
                .unwrap();
            reg.list_tags("a/b").await.unwrap();
        }
        assert_eq!(mem.calls(), 1);
    }

    #[tokio::test]
    async fn ecr_connector_keeps_one_client_per_registry_and_identity() {
        let connector = EcrConnector::with_options(EcrOptions::default(), CacheOptions::default());
        let r1 = RegistryRef::new("111122223333", "us-east-1");
        let r2 = RegistryRef::new("111122223333", "eu-west-1");
        let a = AwsCredentials::new("AKIDA", "secret-a", None);
        let b = AwsCredentials::new("AKIDA", "secret-b", None);
        let ttl = Duration::from_secs(60);
        connector.connect(&r1, Some(&a), ttl).await.unwrap();
        connector.connect(&r1, Some(&a), ttl).await.unwrap();
        assert_eq!(connector.call_counts().await.len(), 1);
        connector.connect(&r1, Some(&b), ttl).await.unwrap();
        connector.connect(&r2, Some(&a), ttl).await.unwrap();
        assert_eq!(connector.call_counts().await.len(), 3);
    }
}
