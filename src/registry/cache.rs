//! A caching [`Registry`] in front of another one.
//!
//! * Package metadata is cached by (repository, digest) for the life of the
//!   process: content at a digest never changes. The cache is bounded; the
//!   least recently used entries go first.
//! * Tag lists and tag -> digest answers are cached for a TTL (default five
//!   minutes), so a tag moved in the registry is seen within that time.
//! * Concurrent identical lookups share one call to the inner registry
//!   (single flight); its answer, or its error, goes to all of them.
//! * Errors are never cached: the next lookup after a failure asks again.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};

use super::{PackageMeta, Registry};
use crate::error::Result;

/// Default time a tag list or tag -> digest answer is trusted.
pub const DEFAULT_TAG_TTL: Duration = Duration::from_secs(5 * 60);
/// Default number of package metadata entries kept.
pub const DEFAULT_META_ENTRIES: usize = 4096;
/// Default number of tag lists, and of tag -> digest answers, kept.
pub const DEFAULT_TTL_ENTRIES: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheOptions {
    pub tag_ttl: Duration,
    pub meta_entries: usize,
    pub ttl_entries: usize,
}

impl Default for CacheOptions {
    fn default() -> Self {
        Self {
            tag_ttl: DEFAULT_TAG_TTL,
            meta_entries: DEFAULT_META_ENTRIES,
            ttl_entries: DEFAULT_TTL_ENTRIES,
        }
    }
}

/// See the module documentation.
pub struct CachedRegistry<R: ?Sized> {
    state: Arc<State<R>>,
}

impl<R: ?Sized> Clone for CachedRegistry<R> {
    fn clone(&self) -> Self {
        Self {
            state: self.state.clone(),
        }
    }
}

type Key = (String, String);

struct State<R: ?Sized> {
    inner: Arc<R>,
    tag_ttl_ms: AtomicU64,
    tags: Mutex<Bounded<String, Vec<String>>>,
    digests: Mutex<Bounded<Key, String>>,
    metas: Mutex<Bounded<Key, PackageMeta>>,
    tag_flights: Flights<String, Vec<String>>,
    digest_flights: Flights<Key, String>,
    meta_flights: Flights<Key, PackageMeta>,
}

impl<R: Registry + ?Sized + 'static> CachedRegistry<R> {
    pub fn new(inner: Arc<R>, options: CacheOptions) -> Self {
        Self {
            state: Arc::new(State {
                inner,
                tag_ttl_ms: AtomicU64::new(millis(options.tag_ttl)),
                tags: Mutex::new(Bounded::new(options.ttl_entries)),
                digests: Mutex::new(Bounded::new(options.ttl_entries)),
                metas: Mutex::new(Bounded::new(options.meta_entries)),
                tag_flights: Flights::default(),
                digest_flights: Flights::default(),
                meta_flights: Flights::default(),
            }),
        }
    }

    /// Default bounds, the given tag TTL.
    pub fn with_tag_ttl(inner: Arc<R>, tag_ttl: Duration) -> Self {
        Self::new(
            inner,
            CacheOptions {
                tag_ttl,
                ..CacheOptions::default()
            },
        )
    }

    pub fn inner(&self) -> &Arc<R> {
        &self.state.inner
    }

    /// Changes the TTL of tag answers (cached answers are judged by the new one).
    pub fn set_tag_ttl(&self, ttl: Duration) {
        self.state.tag_ttl_ms.store(millis(ttl), Ordering::Relaxed);
    }
}

fn millis(d: Duration) -> u64 {
    d.as_millis().min(u64::MAX as u128) as u64
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<R: ?Sized> State<R> {
    fn fresh<K: Eq + Hash + Clone, V: Clone>(
        &self,
        map: &Mutex<Bounded<K, V>>,
        key: &K,
    ) -> Option<V> {
        let ttl = Duration::from_millis(self.tag_ttl_ms.load(Ordering::Relaxed));
        let mut map = lock(map);
        let (value, at) = map.get(key)?;
        if at.elapsed() < ttl {
            Some(value)
        } else {
            map.entries.remove(key);
            None
        }
    }
}

#[async_trait]
impl<R: Registry + ?Sized + 'static> Registry for CachedRegistry<R> {
    async fn list_tags(&self, repository: &str) -> Result<Vec<String>> {
        let key = repository.to_string();
        if let Some(tags) = self.state.fresh(&self.state.tags, &key) {
            return Ok(tags);
        }
        let state = self.state.clone();
        self.state
            .tag_flights
            .run(key.clone(), move || {
                async move {
                    let tags = state.inner.list_tags(&key).await?;
                    lock(&state.tags).insert(key, tags.clone());
                    Ok(tags)
                }
                .boxed()
            })
            .await
    }

    async fn resolve_digest(&self, repository: &str, reference: &str) -> Result<String> {
        let key = (repository.to_string(), reference.to_string());
        if reference.starts_with("sha256:") && lock(&self.state.metas).get(&key).is_some() {
            // Its package was read, so it exists; content at a digest is fixed.
            return Ok(reference.to_string());
        }
        if let Some(digest) = self.state.fresh(&self.state.digests, &key) {
            return Ok(digest);
        }
        let state = self.state.clone();
        self.state
            .digest_flights
            .run(key.clone(), move || {
                async move {
                    let digest = state.inner.resolve_digest(&key.0, &key.1).await?;
                    lock(&state.digests).insert(key, digest.clone());
                    Ok(digest)
                }
                .boxed()
            })
            .await
    }

    async fn package_meta(&self, repository: &str, digest: &str) -> Result<PackageMeta> {
        let key = (repository.to_string(), digest.to_string());
        if let Some((meta, _)) = lock(&self.state.metas).get(&key) {
            return Ok(meta);
        }
        let state = self.state.clone();
        self.state
            .meta_flights
            .run(key.clone(), move || {
                async move {
                    let meta = state.inner.package_meta(&key.0, &key.1).await?;
                    lock(&state.metas).insert(key, meta.clone());
                    Ok(meta)
                }
                .boxed()
            })
            .await
    }
}

/// A map with a size bound; the least recently used entries are dropped
/// first. Each entry remembers when it was stored.
struct Bounded<K, V> {
    capacity: usize,
    tick: u64,
    entries: HashMap<K, Entry<V>>,
}

struct Entry<V> {
    value: V,
    stored: Instant,
    used: u64,
}

impl<K: Eq + Hash + Clone, V: Clone> Bounded<K, V> {
    fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            tick: 0,
            entries: HashMap::new(),
        }
    }

    fn get(&mut self, key: &K) -> Option<(V, Instant)> {
        self.tick += 1;
        let tick = self.tick;
        self.entries.get_mut(key).map(|e| {
            e.used = tick;
            (e.value.clone(), e.stored)
        })
    }

    fn insert(&mut self, key: K, value: V) {
        self.tick += 1;
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&key) {
            evict_oldest(&mut self.entries, |e| e.used);
        }
        self.entries.insert(
            key,
            Entry {
                value,
                stored: Instant::now(),
                used: self.tick,
            },
        );
    }
}

/// Drops the least recently used eighth (at least one entry) of a map, by a
/// use stamp. Amortised: a full map is scanned once per eighth of inserts.
pub(crate) fn evict_oldest<K: Clone + Eq + Hash, V>(
    map: &mut HashMap<K, V>,
    stamp: impl Fn(&V) -> u64,
) {
    let n = (map.len() / 8).max(1);
    let mut stamps: Vec<(u64, K)> = map.iter().map(|(k, v)| (stamp(v), k.clone())).collect();
    stamps.sort_unstable_by_key(|(t, _)| *t);
    for (_, k) in stamps.into_iter().take(n) {
        map.remove(&k);
    }
}

type Flight<V> = Shared<BoxFuture<'static, Result<V>>>;

/// Calls in progress, by key: a second caller for the same key waits for the
/// first call instead of making its own.
struct Flights<K, V> {
    map: Mutex<HashMap<K, Flight<V>>>,
}

impl<K, V> Default for Flights<K, V> {
    fn default() -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash + Clone, V: Clone + Send + Sync + 'static> Flights<K, V> {
    async fn run(
        &self,
        key: K,
        start: impl FnOnce() -> BoxFuture<'static, Result<V>>,
    ) -> Result<V> {
        let flight = lock(&self.map)
            .entry(key.clone())
            .or_insert_with(|| start().shared())
            .clone();
        let answer = flight.clone().await;
        let mut map = lock(&self.map);
        if map.get(&key).is_some_and(|f| f.ptr_eq(&flight)) {
            map.remove(&key);
        }
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::registry::memory::MemoryRegistry;

    fn meta(name: &str) -> PackageMeta {
        PackageMeta {
            name: name.into(),
            ..PackageMeta::default()
        }
    }

    #[tokio::test]
    async fn warm_lookups_cost_nothing_within_the_ttl() {
        let mem = Arc::new(MemoryRegistry::new());
        let d = mem.push("a/b", "v1.0.0", meta("b"));
        let cache = CachedRegistry::with_tag_ttl(mem.clone(), Duration::from_secs(60));
        for _ in 0..3 {
            assert_eq!(
                cache.list_tags("a/b").await.unwrap(),
                vec!["v1.0.0".to_string()]
            );
            assert_eq!(cache.resolve_digest("a/b", "v1.0.0").await.unwrap(), d);
            assert_eq!(cache.package_meta("a/b", &d).await.unwrap().name, "b");
            assert_eq!(cache.resolve_digest("a/b", &d).await.unwrap(), d);
        }
        assert_eq!(mem.calls(), 3);
    }

    #[tokio::test]
    async fn tags_expire_metadata_does_not() {
        let mem = Arc::new(MemoryRegistry::new());
        let d = mem.push("a/b", "v1", meta("b"));
        let cache = CachedRegistry::with_tag_ttl(mem.clone(), Duration::from_millis(30));
        cache.list_tags("a/b").await.unwrap();
        cache.package_meta("a/b", &d).await.unwrap();
        mem.push("a/b", "v2", meta("b2"));
        tokio::time::sleep(Duration::from_millis(60)).await;
        let mut tags = cache.list_tags("a/b").await.unwrap();
        tags.sort();
        assert_eq!(tags, vec!["v1".to_string(), "v2".to_string()]);
        cache.package_meta("a/b", &d).await.unwrap();
        assert_eq!(mem.calls(), 3);
    }

    #[tokio::test]
    async fn errors_are_not_cached() {
        let mem = Arc::new(MemoryRegistry::new());
        mem.push("a/b", "v1", meta("b"));
        let cache = CachedRegistry::with_tag_ttl(mem.clone(), Duration::from_secs(60));
        mem.set_down(true);
        assert!(matches!(
            cache.list_tags("a/b").await,
            Err(Error::Unavailable { .. })
        ));
        mem.set_down(false);
        assert!(cache.list_tags("a/b").await.is_ok());
        assert!(matches!(
            cache.list_tags("missing").await,
            Err(Error::RepositoryNotFound { .. })
        ));
        assert!(cache.list_tags("missing").await.is_err());
        assert_eq!(mem.calls(), 4);
    }

    /// A registry that answers slowly and counts calls.
    struct Slow {
        calls: AtomicU64,
    }

    #[async_trait]
    impl Registry for Slow {
        async fn list_tags(&self, _: &str) -> Result<Vec<String>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(vec!["v1".into()])
        }
        async fn resolve_digest(&self, _: &str, _: &str) -> Result<String> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            Err(Error::Unavailable {
                operation: "BatchGetImage".into(),
                message: "slow and down".into(),
            })
        }
        async fn package_meta(&self, _: &str, _: &str) -> Result<PackageMeta> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(meta("m"))
        }
    }

    #[tokio::test]
    async fn concurrent_identical_lookups_share_one_call() {
        let slow = Arc::new(Slow {
            calls: AtomicU64::new(0),
        });
        let cache = CachedRegistry::with_tag_ttl(slow.clone(), Duration::from_secs(60));
        let tags = futures_util::future::join_all((0..20).map(|_| cache.list_tags("r"))).await;
        assert!(
            tags.iter()
                .all(|t| t.as_ref().unwrap() == &vec!["v1".to_string()])
        );
        assert_eq!(slow.calls.load(Ordering::SeqCst), 1);

        // A shared failure reaches every waiter, and is not kept.
        let digests =
            futures_util::future::join_all((0..20).map(|_| cache.resolve_digest("r", "v1"))).await;
        assert!(digests.iter().all(|d| d.is_err()));
        assert_eq!(slow.calls.load(Ordering::SeqCst), 2);
        assert!(cache.resolve_digest("r", "v1").await.is_err());
        assert_eq!(slow.calls.load(Ordering::SeqCst), 3);

        let metas =
            futures_util::future::join_all((0..20).map(|_| cache.package_meta("r", "sha256:x")))
                .await;
        assert!(metas.iter().all(|m| m.is_ok()));
        assert_eq!(slow.calls.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn bounded_maps_stay_bounded() {
        let mut b = Bounded::new(16);
        for i in 0..1000 {
            b.insert(i, i);
            b.get(&0);
        }
        assert!(b.entries.len() <= 16);
        assert!(b.get(&0).is_some());
        assert!(b.get(&999).is_some());
    }
}
