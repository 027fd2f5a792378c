//! The registries this process has read successfully. With no
//! `allowedRegistries` in the input, the only bound on an XR's registry is
//! what the function's own AWS identity can read; a registry that identity
//! has never read may be one the platform never meant to admit (denied, a
//! region that does not exist), so the XR's status may not stand in for it
//! when it fails. Kept for the life of the process, bounded: a registry
//! forgotten is treated as never read, the safe side.

use crate::aws::RegistryRef;

/// Registries remembered at most; the least recently used go first.
pub const MAX_SEEN_REGISTRIES: u64 = 1024;

/// A registry (account and region) with the host packages are pulled from.
type Key = (RegistryRef, String);

pub struct SeenRegistries {
    seen: moka::sync::Cache<Key, ()>,
}

impl Default for SeenRegistries {
    fn default() -> Self {
        Self::new(MAX_SEEN_REGISTRIES)
    }
}

impl SeenRegistries {
    pub fn new(capacity: u64) -> Self {
        Self {
            seen: moka::sync::Cache::new(capacity),
        }
    }

    /// Notes a complete, successful read of `registry` pulled from `host`.
    pub fn record(&self, registry: &RegistryRef, host: &str) {
        self.seen.insert((registry.clone(), host.to_string()), ());
    }

    /// Whether `registry`, pulled from `host`, was read successfully.
    pub fn has_read(&self, registry: &RegistryRef, host: &str) -> bool {
        self.seen
            .contains_key(&(registry.clone(), host.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_are_told_apart_by_account_region_and_host() {
        let seen = SeenRegistries::default();
        let registry = RegistryRef::new("111122223333", "eu-west-2");
        let host = registry.host();
        assert!(!seen.has_read(&registry, &host));
        seen.record(&registry, &host);
        assert!(seen.has_read(&registry, &host));
        for (other, other_host) in [
            (RegistryRef::new("444455556666", "eu-west-2"), host.clone()),
            (RegistryRef::new("111122223333", "us-east-1"), host.clone()),
            (registry.clone(), "proxy.internal:5000".to_string()),
        ] {
            assert!(!seen.has_read(&other, &other_host), "{other} {other_host}");
        }
    }

    #[test]
    fn the_memory_is_bounded() {
        let seen = SeenRegistries::new(4);
        for i in 0..100 {
            let registry = RegistryRef::new(format!("{i:012}"), "eu-west-2");
            seen.record(&registry, "h");
        }
        seen.seen.run_pending_tasks();
        assert!(seen.seen.entry_count() <= 4, "{}", seen.seen.entry_count());
    }
}
