//! A caching [`Registry`] in front of another one, on moka.
//!
//! * Package metadata is cached by (repository, digest) with no expiry:
//!   content at a digest never changes.
//! * Tag lists (with the digests a listing gives, which spare the
//!   resolver a tag -> digest lookup), tag -> digest answers, image scan
//!   reports and the signatures stored beside a digest (a signature tag
//!   moves as signatures are added, unlike the image it names) are cached
//!   for the tag TTL (default five minutes; the caller's current TTL is
//!   applied on every read), so a tag moved in the registry, or a scan
//!   finished or updated with new findings, is seen within that time.
//! * Failures are remembered too, briefly, so that an outage or a broken
//!   package is not asked about again by every reconcile of every XR that
//!   names it: transient ones (unreachable, throttled, timed out, refused
//!   credentials) for `transient_backoff`, definitive ones (not found,
//!   invalid package) for `negative_ttl`.
//! * Each cache is bounded by an approximate byte weight, not an entry count.
//! * Concurrent identical lookups share one call to the inner registry
//!   (moka's `get_with`): its answer, or its error, goes to all of them. A
//!   caller that is cancelled, or whose lookup panics, leaves nothing behind:
//!   the next caller starts afresh.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use moka::future::Cache;
use moka::{Equivalent, Expiry};

use super::scan::ScanReport;
use super::{Registry, Tags};
use crate::error::Result;
use crate::package::PackageMeta;
use crate::signature::Signatures;

/// Default time a tag list or tag -> digest answer is trusted.
pub const DEFAULT_TAG_TTL: Duration = Duration::from_secs(5 * 60);
/// Default budget of the package metadata cache, in bytes.
pub const DEFAULT_META_BYTES: u64 = 16 * 1024 * 1024;
/// Default budget of the tag list and tag -> digest caches, in bytes each.
pub const DEFAULT_TAG_BYTES: u64 = 16 * 1024 * 1024;
/// Default time a transient failure is remembered.
pub const DEFAULT_TRANSIENT_BACKOFF: Duration = Duration::from_secs(2);
/// Default time a definitive failure (not found, invalid) is remembered.
pub const DEFAULT_NEGATIVE_TTL: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheOptions {
    pub tag_ttl: Duration,
    /// Byte budget of the package metadata cache.
    pub meta_bytes: u64,
    /// Byte budget of each of the tag list and tag -> digest caches.
    pub tag_bytes: u64,
    /// How long a transient failure is answered from memory.
    pub transient_backoff: Duration,
    /// How long a definitive failure is answered from memory.
    pub negative_ttl: Duration,
}

impl Default for CacheOptions {
    fn default() -> Self {
        Self {
            tag_ttl: DEFAULT_TAG_TTL,
            meta_bytes: DEFAULT_META_BYTES,
            tag_bytes: DEFAULT_TAG_BYTES,
            transient_backoff: DEFAULT_TRANSIENT_BACKOFF,
            negative_ttl: DEFAULT_NEGATIVE_TTL,
        }
    }
}

impl CacheOptions {
    /// Default budgets with failures not remembered: for tests that switch
    /// a registry off and on between calls.
    pub fn forgetting_failures() -> Self {
        Self {
            transient_backoff: Duration::ZERO,
            negative_ttl: Duration::ZERO,
            ..Self::default()
        }
    }
}

tokio::task_local! {
    /// While a reconcile runs: the earliest moment one of the cached
    /// answers it used stops being trusted.
    static TRUSTED_UNTIL: std::cell::Cell<Option<Instant>>;
}

/// Runs `work` and says until when every cached registry answer it used is
/// still trusted (`None`: it used none that expires). A response built
/// from those answers may be given again until then.
pub async fn trusted_until<F: std::future::Future>(work: F) -> (F::Output, Option<Instant>) {
    TRUSTED_UNTIL
        .scope(std::cell::Cell::new(None), async {
            let output = work.await;
            (output, TRUSTED_UNTIL.with(std::cell::Cell::get))
        })
        .await
}

/// Notes that an answer in use is trusted until `until`.
fn note(until: Instant) {
    let _ = TRUSTED_UNTIL.try_with(|cell| {
        cell.set(Some(cell.get().map_or(until, |earlier| earlier.min(until))));
    });
}

/// What a lookup found, or why it failed, and when.
#[derive(Clone, Debug)]
struct Answer<V> {
    outcome: Result<V>,
    at: Instant,
}

/// A (repository, digest or tag) pair, as stored.
type Key = (String, String);

/// A [`Key`] borrowed from the caller's strings: a warm lookup, two per
/// package per call, allocates nothing. Hashes as the tuple it stands for.
#[derive(Hash)]
struct Pair<'a>(&'a str, &'a str);

impl Equivalent<Key> for Pair<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        self.0 == key.0 && self.1 == key.1
    }
}

/// A key borrowed for a lookup, made owned only to store an answer.
trait Lookup<K>: Equivalent<K> + std::hash::Hash {
    fn to_key(&self) -> K;
}

impl Lookup<String> for str {
    fn to_key(&self) -> String {
        self.to_string()
    }
}

impl Lookup<Key> for Pair<'_> {
    fn to_key(&self) -> Key {
        (self.0.to_string(), self.1.to_string())
    }
}

/// Keys are hashed on every lookup, two per package per call; foldhash,
/// seeded per process, instead of SipHash.
type Hasher = foldhash::fast::RandomState;

/// One of the caches, by what it is keyed by and holds.
type Store<K, V> = Cache<K, Answer<V>, Hasher>;

/// See the module documentation.
pub struct CachedRegistry<R: ?Sized> {
    inner: Arc<R>,
    tag_ttl_ms: Arc<AtomicU64>,
    failures: Failures,
    tags: Store<String, Tags>,
    digests: Store<Key, String>,
    metas: Store<Key, Arc<PackageMeta>>,
    scans: Store<Key, Arc<ScanReport>>,
    signatures: Store<Key, Arc<Signatures>>,
}

impl<R: ?Sized> Clone for CachedRegistry<R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            tag_ttl_ms: self.tag_ttl_ms.clone(),
            failures: self.failures,
            tags: self.tags.clone(),
            digests: self.digests.clone(),
            metas: self.metas.clone(),
            scans: self.scans.clone(),
            signatures: self.signatures.clone(),
        }
    }
}

/// How long failures are remembered, by kind.
#[derive(Clone, Copy, Debug)]
struct Failures {
    transient: Duration,
    negative: Duration,
}

impl Failures {
    fn life(&self, error: &crate::error::Error) -> Duration {
        if error.is_transient() {
            self.transient
        } else {
            self.negative
        }
    }
}

/// How long an answer lives: failures by kind, successes by `ok` (none
/// for immutable content). Read once, when the answer is stored.
struct Lifetime {
    ok: Option<Arc<AtomicU64>>,
    failures: Failures,
}

impl<K, V> Expiry<K, Answer<V>> for Lifetime {
    fn expire_after_create(
        &self,
        _key: &K,
        answer: &Answer<V>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        match &answer.outcome {
            Ok(_) => self
                .ok
                .as_ref()
                .map(|ms| Duration::from_millis(ms.load(Ordering::Relaxed))),
            Err(e) => Some(self.failures.life(e)),
        }
    }
}

/// Approximate bytes held by an entry, for the caches' budgets.
trait Weight {
    fn weight(&self) -> usize;
}

impl Weight for String {
    fn weight(&self) -> usize {
        self.len() + 24
    }
}

impl Weight for Key {
    fn weight(&self) -> usize {
        self.0.weight() + self.1.weight()
    }
}

impl Weight for Tags {
    fn weight(&self) -> usize {
        Tags::weight(self)
    }
}

impl Weight for Arc<PackageMeta> {
    fn weight(&self) -> usize {
        self.name.weight()
            + self
                .depends_on
                .iter()
                .map(|d| d.package.weight() + d.version.weight() + 8)
                .sum::<usize>()
    }
}

impl Weight for Arc<ScanReport> {
    fn weight(&self) -> usize {
        self.findings
            .iter()
            .map(|f| f.name.weight() + 8)
            .sum::<usize>()
            + self.counts.len() * 16
            + 64
    }
}

impl Weight for Arc<Signatures> {
    fn weight(&self) -> usize {
        Signatures::weight(self)
    }
}

impl<V: Weight> Weight for Answer<V> {
    fn weight(&self) -> usize {
        match &self.outcome {
            Ok(v) => v.weight(),
            // An error's message is short; count it roughly.
            Err(_) => 256,
        }
    }
}

fn build<K, V>(bytes: u64, lifetime: Lifetime) -> Store<K, V>
where
    K: Weight + std::hash::Hash + Eq + Send + Sync + 'static,
    V: Weight + Clone + Send + Sync + 'static,
{
    Cache::builder()
        .max_capacity(bytes)
        .weigher(|k: &K, v: &Answer<V>| {
            u32::try_from(k.weight() + v.weight() + 64).unwrap_or(u32::MAX)
        })
        .expire_after(lifetime)
        .build_with_hasher(Hasher::default())
}

impl<R: Registry + ?Sized + 'static> CachedRegistry<R> {
    pub fn new(inner: Arc<R>, options: CacheOptions) -> Self {
        let tag_ttl_ms = Arc::new(AtomicU64::new(millis(options.tag_ttl)));
        let failures = Failures {
            transient: options.transient_backoff,
            negative: options.negative_ttl,
        };
        let lifetime = |ok: Option<Arc<AtomicU64>>| Lifetime { ok, failures };
        Self {
            inner,
            failures,
            tags: build(options.tag_bytes, lifetime(Some(tag_ttl_ms.clone()))),
            digests: build(options.tag_bytes, lifetime(Some(tag_ttl_ms.clone()))),
            metas: build(options.meta_bytes, lifetime(None)),
            scans: build(options.tag_bytes, lifetime(Some(tag_ttl_ms.clone()))),
            signatures: build(options.tag_bytes, lifetime(Some(tag_ttl_ms.clone()))),
            tag_ttl_ms,
        }
    }

    /// Default budgets, the given tag TTL.
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
        &self.inner
    }

    /// Changes the TTL of tag answers (cached answers are judged by the new one).
    pub fn set_tag_ttl(&self, ttl: Duration) {
        self.tag_ttl_ms.store(millis(ttl), Ordering::Relaxed);
    }

    fn tag_ttl(&self) -> Duration {
        Duration::from_millis(self.tag_ttl_ms.load(Ordering::Relaxed))
    }

    /// Bytes held by each cache (tags, digests, metadata), as weighed.
    pub async fn weighted_sizes(&self) -> [u64; 3] {
        self.tags.run_pending_tasks().await;
        self.digests.run_pending_tasks().await;
        self.metas.run_pending_tasks().await;
        [
            self.tags.weighted_size(),
            self.digests.weighted_size(),
            self.metas.weighted_size(),
        ]
    }
}

fn millis(d: Duration) -> u64 {
    d.as_millis().min(u64::MAX as u128) as u64
}

/// The cached answer for `key`, or a new one from `lookup` shared with
/// every concurrent caller. A successful answer older than `max_age` (the
/// caller's current tag TTL) is asked again.
async fn answer<K, Q, V, F>(
    cache: &Store<K, V>,
    failures: Failures,
    key: &Q,
    max_age: Option<Duration>,
    lookup: F,
) -> Result<V>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    Q: Lookup<K> + ?Sized,
    V: Clone + Send + Sync + 'static,
    F: std::future::Future<Output = Result<V>>,
{
    // One lookup when the answer is there and still good; only a miss or a
    // stale success goes on to share a new lookup.
    let found = match cache.get(key).await {
        Some(cached)
            if cached.outcome.is_err() || max_age.is_none_or(|age| cached.at.elapsed() < age) =>
        {
            cached
        }
        stale => {
            if stale.is_some() {
                cache.invalidate(key).await;
            }
            cache
                .get_with(key.to_key(), async {
                    Answer {
                        outcome: lookup.await,
                        at: Instant::now(),
                    }
                })
                .await
        }
    };
    let expires = match &found.outcome {
        Ok(_) => max_age.map(|age| found.at + age),
        Err(error) => Some(found.at + failures.life(error)),
    };
    if let Some(expires) = expires {
        note(expires);
    }
    found.outcome
}

#[async_trait]
impl<R: Registry + ?Sized + 'static> Registry for CachedRegistry<R> {
    async fn list_tags(&self, repository: &str) -> Result<Tags> {
        // Made only when the cache has no good answer.
        let lookup = async { self.inner.list_tags(repository).await };
        answer(
            &self.tags,
            self.failures,
            repository,
            Some(self.tag_ttl()),
            lookup,
        )
        .await
    }

    async fn resolve_digest(&self, repository: &str, reference: &str) -> Result<String> {
        let key = Pair(repository, reference);
        if reference.starts_with("sha256:")
            && self
                .metas
                .get(&key)
                .await
                .is_some_and(|a| a.outcome.is_ok())
        {
            // Its package was read, so it exists; content at a digest is fixed.
            return Ok(reference.to_string());
        }
        let lookup = async { self.inner.resolve_digest(repository, reference).await };
        answer(
            &self.digests,
            self.failures,
            &key,
            Some(self.tag_ttl()),
            lookup,
        )
        .await
    }

    async fn package_meta(&self, repository: &str, digest: &str) -> Result<Arc<PackageMeta>> {
        let lookup = self.inner.package_meta(repository, digest);
        let key = Pair(repository, digest);
        answer(&self.metas, self.failures, &key, None, lookup).await
    }

    async fn scan_report(&self, repository: &str, digest: &str) -> Result<ScanReport> {
        let key = Pair(repository, digest);
        let lookup = async {
            self.inner
                .scan_report(repository, digest)
                .await
                .map(Arc::new)
        };
        let ttl = Some(self.tag_ttl());
        let report = answer(&self.scans, self.failures, &key, ttl, lookup).await?;
        Ok(ScanReport::clone(&report))
    }

    async fn signatures(&self, repository: &str, digest: &str) -> Result<Arc<Signatures>> {
        let key = Pair(repository, digest);
        let lookup = self.inner.signatures(repository, digest);
        let ttl = Some(self.tag_ttl());
        answer(&self.signatures, self.failures, &key, ttl, lookup).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::registry::memory::MemoryRegistry;
    use std::sync::atomic::AtomicU64;

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
            let tags = cache.list_tags("a/b").await.unwrap();
            assert_eq!(tags.as_slice(), ["v1.0.0".to_string()]);
            assert_eq!(tags.digest_of("v1.0.0"), Some(d.as_str()));
            assert_eq!(cache.resolve_digest("a/b", "v1.0.0").await.unwrap(), d);
            assert_eq!(cache.package_meta("a/b", &d).await.unwrap().name, "b");
            assert_eq!(cache.resolve_digest("a/b", &d).await.unwrap(), d);
        }
        assert_eq!(mem.calls(), 3);
    }

    #[tokio::test]
    async fn scan_reports_are_asked_once_per_tag_ttl() {
        use crate::registry::scan::{ScanReport, Severity};
        let mem = Arc::new(MemoryRegistry::new());
        let d = mem.push("a/b", "v1", meta("b"));
        let cache = CachedRegistry::with_tag_ttl(mem.clone(), Duration::from_millis(40));
        for _ in 0..3 {
            let report = cache.scan_report("a/b", &d).await.unwrap();
            assert!(matches!(
                report.state,
                crate::registry::scan::ScanState::NotScanned { .. }
            ));
        }
        assert_eq!(mem.calls(), 1);
        let found = ScanReport::with_findings(&[("CVE-1", Severity::Critical)]);
        mem.set_scan(&d, found.clone());
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(cache.scan_report("a/b", &d).await.unwrap(), found);
        assert_eq!(mem.calls(), 2);
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
        let tags = cache.list_tags("a/b").await.unwrap();
        assert_eq!(tags.as_slice(), ["v1".to_string(), "v2".to_string()]);
        cache.package_meta("a/b", &d).await.unwrap();
        assert_eq!(mem.calls(), 3);
    }

    #[tokio::test]
    async fn a_shorter_ttl_applies_to_answers_already_cached() {
        let mem = Arc::new(MemoryRegistry::new());
        mem.push("a/b", "v1", meta("b"));
        let cache = CachedRegistry::with_tag_ttl(mem.clone(), Duration::from_secs(600));
        cache.list_tags("a/b").await.unwrap();
        cache.set_tag_ttl(Duration::from_millis(20));
        tokio::time::sleep(Duration::from_millis(40)).await;
        cache.list_tags("a/b").await.unwrap();
        assert_eq!(mem.calls(), 2);
    }

    #[tokio::test]
    async fn failures_are_remembered_for_their_backoff_then_asked_again() {
        let mem = Arc::new(MemoryRegistry::new());
        mem.push("a/b", "v1", meta("b"));
        let cache = CachedRegistry::new(
            mem.clone(),
            CacheOptions {
                transient_backoff: Duration::from_millis(50),
                negative_ttl: Duration::from_millis(100),
                ..CacheOptions::default()
            },
        );
        mem.set_down(true);
        for _ in 0..3 {
            assert!(matches!(
                cache.list_tags("a/b").await,
                Err(Error::Unavailable { .. })
            ));
        }
        assert_eq!(mem.calls(), 1, "an outage is asked about once per backoff");
        mem.set_down(false);
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert!(cache.list_tags("a/b").await.is_ok());
        assert_eq!(mem.calls(), 2);

        for _ in 0..3 {
            assert!(matches!(
                cache.list_tags("missing").await,
                Err(Error::RepositoryNotFound { .. })
            ));
        }
        assert_eq!(
            mem.calls(),
            3,
            "a missing repository is asked about once per TTL"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(cache.list_tags("missing").await.is_err());
        assert_eq!(mem.calls(), 4);
    }

    #[tokio::test]
    async fn failures_can_be_forgotten_at_once() {
        let mem = Arc::new(MemoryRegistry::new());
        mem.push("a/b", "v1", meta("b"));
        let cache = CachedRegistry::new(mem.clone(), CacheOptions::forgetting_failures());
        mem.set_down(true);
        assert!(cache.list_tags("a/b").await.is_err());
        mem.set_down(false);
        assert!(cache.list_tags("a/b").await.is_ok());
        assert_eq!(mem.calls(), 2);
    }

    /// A registry that answers slowly and counts calls; its first
    /// `package_meta` of `sha256:panics` panics.
    struct Slow {
        calls: AtomicU64,
        delay: Duration,
    }

    #[async_trait]
    impl Registry for Slow {
        async fn list_tags(&self, _: &str) -> Result<Tags> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            Ok(Tags::new(vec!["v1".into()]))
        }
        async fn resolve_digest(&self, _: &str, _: &str) -> Result<String> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            Err(Error::Unavailable {
                operation: "BatchGetImage".into(),
                message: "slow and down".into(),
            })
        }
        async fn package_meta(&self, _: &str, digest: &str) -> Result<Arc<PackageMeta>> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            if digest == "sha256:panics" && n == 0 {
                panic!("the registry client panicked");
            }
            Ok(Arc::new(meta("m")))
        }
    }

    fn slow(delay_ms: u64) -> Arc<Slow> {
        Arc::new(Slow {
            calls: AtomicU64::new(0),
            delay: Duration::from_millis(delay_ms),
        })
    }

    #[tokio::test]
    async fn concurrent_identical_lookups_share_one_call() {
        let slow = slow(50);
        let cache = CachedRegistry::new(slow.clone(), CacheOptions::forgetting_failures());
        let tags = futures_util::future::join_all((0..20).map(|_| cache.list_tags("r"))).await;
        assert!(
            tags.iter()
                .all(|t| t.as_ref().unwrap().as_slice() == ["v1".to_string()])
        );
        assert_eq!(slow.calls.load(Ordering::SeqCst), 1);

        // A shared failure reaches every waiter.
        let digests =
            futures_util::future::join_all((0..20).map(|_| cache.resolve_digest("r", "v1"))).await;
        assert!(digests.iter().all(|d| d.is_err()));
        assert_eq!(slow.calls.load(Ordering::SeqCst), 2);

        let metas =
            futures_util::future::join_all((0..20).map(|_| cache.package_meta("r", "sha256:x")))
                .await;
        assert!(metas.iter().all(|m| m.is_ok()));
        assert_eq!(slow.calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_cancelled_lookup_leaves_nothing_behind() {
        let slow = slow(200);
        let cache = CachedRegistry::new(slow.clone(), CacheOptions::default());
        // Cancelled while the inner call is in flight.
        let cancelled = tokio::time::timeout(Duration::from_millis(20), cache.list_tags("r")).await;
        assert!(cancelled.is_err(), "the first lookup was cut short");
        // The next caller is not stuck behind the dropped one.
        assert_eq!(
            cache.list_tags("r").await.unwrap().as_slice(),
            ["v1".to_string()]
        );
    }

    #[tokio::test]
    async fn a_panicking_lookup_does_not_poison_its_key() {
        let slow = slow(1);
        let cache = CachedRegistry::new(slow.clone(), CacheOptions::default());
        let first = {
            let cache = cache.clone();
            tokio::spawn(async move { cache.package_meta("r", "sha256:panics").await }).await
        };
        assert!(first.is_err(), "the first lookup panicked");
        assert_eq!(
            cache.package_meta("r", "sha256:panics").await.unwrap().name,
            "m"
        );
    }

    #[tokio::test]
    async fn caches_are_bounded_by_bytes() {
        let mem = Arc::new(MemoryRegistry::new());
        let budget = 64 * 1024;
        let cache = CachedRegistry::new(
            mem.clone(),
            CacheOptions {
                meta_bytes: budget,
                tag_bytes: budget,
                ..CacheOptions::default()
            },
        );
        for i in 0..2000 {
            let repository = format!("team/package-{i}");
            let digest = mem.push(&repository, "v1.0.0", meta(&"x".repeat(200)));
            cache.list_tags(&repository).await.unwrap();
            cache.package_meta(&repository, &digest).await.unwrap();
        }
        for size in cache.weighted_sizes().await {
            assert!(size <= budget, "{size} bytes held, budget {budget}");
        }
    }
}
