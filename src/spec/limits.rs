//! The documented maximum of every string and list the function reads from an
//! XR, from its input and from a package's `package.yaml`, in one place.
//!
//! The XRDs in `examples/` and the input CRD in `package/input/` declare the
//! same numbers as `maxLength`/`maxItems` (a unit test compares them), but
//! the function does not rely on the API server: an XR can arrive through an
//! old XRD, a claim, or a status its users edited. Each bound is enforced
//! while the value is decoded, before anything else looks at it (a glob, a
//! constraint parser, a duration parser), so a 1 MB string costs one pass
//! over its characters and one clear error naming the field.
//!
//! Lengths count characters (Unicode code points), as Kubernetes counts
//! `maxLength`; every field below is ASCII when valid.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};

// --- The XR (`spec`) ------------------------------------------------------

/// `spec.packages`: packages one XR lists (a 200-package XR is benchmarked).
pub const MAX_PACKAGES: usize = 500;
/// An ECR repository name: ECR's own limit.
pub const MAX_REPOSITORY_LEN: usize = 256;
/// `spec.packages[].version`: a tag (128 at most in OCI), a `sha256:`
/// digest (71) or a Masterminds constraint; the constraint parser's own
/// bound.
pub const MAX_VERSION_LEN: usize = crate::version::MAX_VERSION_LEN;
/// `spec.packages[].name`: a package object's `metadata.name`, a DNS label.
pub const MAX_PACKAGE_NAME_LEN: usize = 63;
/// `spec.packages[].runtimeConfigName`: a DeploymentRuntimeConfig's name,
/// a DNS subdomain.
pub const MAX_RUNTIME_CONFIG_NAME_LEN: usize = 253;
/// `spec.packages[].activate`: entries per package, and characters per
/// entry (a CRD name is a DNS subdomain).
pub const MAX_ACTIVATIONS: usize = 32;
pub const MAX_ACTIVATION_LEN: usize = 253;
/// `spec.registry.accountId`: exactly 12 digits.
pub const MAX_ACCOUNT_ID_LEN: usize = 12;
/// `spec.registry.region`: the longest real region (`us-isof-south-1`) is 15.
pub const MAX_REGION_LEN: usize = 32;
/// An IAM role name: IAM's own limit.
pub const MAX_ROLE_NAME_LEN: usize = 64;
/// An OIDC provider: IAM allows a 255-character issuer URL; a full
/// `arn:<partition>:iam::<account>:oidc-provider/<issuer>` adds under 60.
pub const MAX_OIDC_PROVIDER_LEN: usize = 512;
/// Service accounts one trust policy names (IAM caps a trust policy at
/// 2048 characters by default, 4096 at most).
pub const MAX_SERVICE_ACCOUNTS: usize = 32;
/// A Kubernetes namespace: a DNS label.
pub const MAX_NAMESPACE_LEN: usize = 63;
/// A service account's name: a DNS subdomain.
pub const MAX_SERVICE_ACCOUNT_NAME_LEN: usize = 253;
/// Node roles the pull policy is attached to (one RolePolicyAttachment each).
pub const MAX_NODE_ROLES: usize = 32;
/// Declared as `maxLength` on enum-valued strings (`kind`, `strategy`,
/// `identity`, `managedResources`), which serde checks by value.
pub const MAX_ENUM_LEN: usize = 32;

// --- The function input ---------------------------------------------------

/// `mirrors`.
pub const MAX_MIRRORS: usize = 32;
/// `mirrors[].upstream`: a registry host and path prefix.
pub const MAX_UPSTREAM_LEN: usize = 256;
/// `mirrors[].repositoryPrefix`: part of an ECR repository name.
pub const MAX_REPOSITORY_PREFIX_LEN: usize = MAX_REPOSITORY_LEN;
/// Entries of each allowlist (`allowedRepositories`, `allowedRegistries`,
/// `allowedRuntimeConfigs`, `iam.allowed*`).
pub const MAX_ALLOWLIST_ITEMS: usize = 128;
/// One glob of an allowlist.
pub const MAX_PATTERN_LEN: usize = 512;
/// A glob of `allowedRegistries[].accountId` or `.region`.
pub const MAX_REGISTRY_PATTERN_LEN: usize = 32;
/// `ttl`, `tagCacheTTL` as written (`1h30m`).
pub const MAX_DURATION_TEXT_LEN: usize = 32;
/// `ttl` and `tagCacheTTL`: a day. Crossplane calls again sooner anyway
/// (its poll interval), and a tag cache trusted for longer would hide
/// releases for longer.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
/// `iam.allowedIdentities`: there are two identities.
pub const MAX_IDENTITIES: usize = 2;
/// `iam.clusterArn`: `arn:<partition>:eks:<region>:<account>:cluster/` and
/// an EKS cluster name of at most 100 characters fit well within it.
pub const MAX_CLUSTER_ARN_LEN: usize = 256;
/// `iam.roleNamePrefix`: what leaves room in a role name for `-` and the
/// hash of the XR's UID.
pub const MAX_ROLE_NAME_PREFIX_LEN: usize = MAX_ROLE_NAME_LEN - 1 - crate::names::HASH_LEN;
/// `registryHost`: a DNS name (253) and a port, with room for placeholders.
pub const MAX_REGISTRY_HOST_LEN: usize = 300;
/// `credentialsName`, `iam.providerConfigName`: Kubernetes object names.
pub const MAX_OBJECT_NAME_LEN: usize = 253;
/// `revisionHistoryLimit`: inactive package revisions Crossplane keeps per
/// package (each with its CRDs); enough for any rollback worth making.
pub const MAX_REVISION_HISTORY_LIMIT: u32 = 10;
/// `upgrades.maxInFlight`: packages of one XR in transition at once.
pub const MAX_IN_FLIGHT: u32 = 100;
/// `upgrades.progressDeadline`: at least a second, at most a day.
pub const MIN_PROGRESS_DEADLINE: Duration = Duration::from_secs(1);
pub const MAX_PROGRESS_DEADLINE: Duration = Duration::from_secs(24 * 3600);
/// `upgrades.quarantine`: at most 30 days (720h).
pub const MAX_QUARANTINE: Duration = Duration::from_secs(720 * 3600);
/// `upgrades.windows`.
pub const MAX_WINDOWS: usize = 32;
/// `upgrades.windows[].days`: each day of the week once.
pub const MAX_WINDOW_DAYS: usize = 7;
/// `upgrades.windows[].start`: `HH:MM`.
pub const MAX_WINDOW_START_LEN: usize = 5;
/// `upgrades.windows[].duration`: at least a minute, at most a week (168h).
pub const MIN_WINDOW_DURATION: Duration = Duration::from_secs(60);
pub const MAX_WINDOW_DURATION: Duration = Duration::from_secs(168 * 3600);
/// `scan.ignore`: finding names never counted.
pub const MAX_SCAN_IGNORE: usize = 256;
/// One finding name (`CVE-2024-1234`, `GHSA-xxxx-xxxx-xxxx`, an Inspector
/// title): in `scan.ignore`, and as the scan gate reads and reports it.
pub const MAX_FINDING_NAME_LEN: usize = 128;
/// `apiVersion` of the input.
pub const MAX_API_VERSION_LEN: usize = 253;
/// `kind` of the input.
pub const MAX_KIND_LEN: usize = 63;

// --- package.yaml (read by `registry::blob`) --------------------------------

/// A dependency's `package` (or `provider`/`configuration`/`function`)
/// path: a registry host (253) and a repository (256).
pub const MAX_DEPENDENCY_PATH_LEN: usize = 512;
/// A dependency's `version`: as `spec.packages[].version`.
pub const MAX_DEPENDENCY_VERSION_LEN: usize = MAX_VERSION_LEN;
/// `dependsOn` entries of one package.
pub const MAX_DEPENDENCIES: usize = 128;

// --- status.packages (written by the function, declared in the XRDs) --------

/// Entries of `status.packages`: the listed packages and their dependencies.
pub const MAX_STATUS_PACKAGES: usize = 2048;
/// `status.packages[].package`: an upstream path, `:` or `@`, a version.
pub const MAX_STATUS_PACKAGE_REF_LEN: usize = 1024;
/// `status.packages[].sharedWith`: `Kind/name` of another XR, cut to 200
/// characters by `ownership` (a multi-byte character counts once here).
pub const MAX_SHARED_WITH_LEN: usize = 512;
/// `status.packages[].digest`: `sha256:` and 64 hex digits, with room.
pub const MAX_DIGEST_LEN: usize = 128;
/// `status.packages[].rollout.since`, `status.quarantined[].until`: an
/// RFC 3339 time (35 characters at most with nanoseconds and an offset).
pub const MAX_TIMESTAMP_LEN: usize = 64;
/// Entries of `status.quarantined`: releases rolled back and held back.
pub const MAX_QUARANTINED: usize = 1000;
/// `status.quarantined[].reason`.
pub const MAX_QUARANTINE_REASON_LEN: usize = 1024;
/// `status.packages[].skipped`: versions the supply-chain gate skipped,
/// highest first, per package.
pub const MAX_SKIPPED: usize = 16;
/// `status.packages[].skipped[].reason`.
pub const MAX_SKIPPED_REASON_LEN: usize = 512;
/// `verify.authorities`: signing authorities in one input.
pub const MAX_AUTHORITIES: usize = 32;
/// `verify.authorities[].name`.
pub const MAX_AUTHORITY_NAME_LEN: usize = 63;
/// `verify.authorities[].key.publicKey`: a PEM public key (a P-256 one is
/// 178 characters).
pub const MAX_PUBLIC_KEY_PEM_LEN: usize = 4096;
/// `verify.authorities[].keyless.identities`: identities one keyless
/// authority allows.
pub const MAX_KEYLESS_IDENTITIES: usize = 16;
/// `verify.authorities[].keyless.identities[].issuer`, `.subject` and
/// `.subjectRegExp`.
pub const MAX_IDENTITY_LEN: usize = 1024;

// --- What a registry holds beside an image: its signatures ----------------

/// Signatures read for one image digest: layers of its `.sig` manifest
/// plus bundles among its referrers; the rest are not read.
pub const MAX_SIGNATURES: usize = 8;
/// A signature manifest or referrers index (cosign's are under 2 KiB).
pub const MAX_SIGNATURE_MANIFEST_BYTES: usize = 64 * 1024;
/// A simple-signing payload (cosign's are about 250 bytes).
pub const MAX_SIGNATURE_PAYLOAD_BYTES: usize = 64 * 1024;
/// A Sigstore bundle (a keyless one with its certificate and log entry is
/// about 10 KiB).
pub const MAX_BUNDLE_BYTES: usize = 256 * 1024;
/// A base64 signature, in an annotation or a bundle.
pub const MAX_SIGNATURE_LEN: usize = 1024;
/// Signatures in one DSSE envelope, subjects in one in-toto statement,
/// transparency log entries in one bundle.
pub const MAX_ENVELOPE_ITEMS: usize = 16;
/// A legacy layer's `dev.sigstore.cosign/certificate` annotation: one PEM
/// certificate (a Fulcio leaf is about 1 KiB).
pub const MAX_CERTIFICATE_PEM_LEN: usize = 16 * 1024;
/// A legacy layer's `dev.sigstore.cosign/chain` annotation: PEM
/// certificates (Fulcio's intermediate and root: about 1.5 KiB).
pub const MAX_CHAIN_PEM_LEN: usize = 32 * 1024;
/// A legacy layer's `dev.sigstore.cosign/bundle` annotation: the Rekor
/// entry (its body holds the certificate; about 4 KiB).
pub const MAX_REKOR_BUNDLE_LEN: usize = 64 * 1024;

/// Leaving entries of `status.packages` asked for in one call (one required
/// resource each); the rest count as still there and are asked for once
/// earlier ones are gone.
pub const MAX_LEAVING_LOOKUPS: usize = 128;

// --- Sigstore (read by `keyless`) --------------------------------------------

/// A `trusted_root.json`: the public-good one is about 8 KiB.
pub const MAX_TRUSTED_ROOT_LEN: usize = 1 << 20;
/// Transparency logs, and CT logs, one trusted root lists (public-good: a
/// handful, one per key rotation).
pub const MAX_TRUSTED_ROOT_LOGS: usize = 64;
/// Certificate authorities one trusted root lists.
pub const MAX_TRUSTED_ROOT_AUTHORITIES: usize = 64;
/// Certificates in one authority's chain (Fulcio's: 2).
pub const MAX_TRUSTED_ROOT_CHAIN: usize = 8;
/// Certificates one signature carries (leaf and intermediates), and the
/// longest path from a leaf to its root.
pub const MAX_CERTIFICATE_CHAIN: usize = 8;

/// The error for a string over its limit; says how long it is, never what
/// it says.
pub fn too_long(max: usize, len: usize) -> String {
    format!("must be at most {max} characters, got {len}")
}

/// The error for a list over its limit.
pub fn too_many(max: usize, len: usize) -> String {
    format!("must have at most {max} items, got {len}")
}

/// `Err(too_long)` when `text` is longer than `max` characters; one pass
/// over the text at most.
pub fn check_len(text: &str, max: usize) -> Result<(), String> {
    // Each character is at least one byte: short byte strings pass at once.
    if text.len() <= max {
        return Ok(());
    }
    let count = text.chars().count();
    if count > max {
        return Err(too_long(max, count));
    }
    Ok(())
}

/// serde `deserialize_with` for a `String` of at most `MAX` characters.
pub fn string<'de, const MAX: usize, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let text = String::deserialize(d)?;
    check_len(&text, MAX).map_err(de::Error::custom)?;
    Ok(text)
}

/// serde `deserialize_with` for an `Option<String>` of at most `MAX`
/// characters (the field needs `#[serde(default)]`).
pub fn option_string<'de, const MAX: usize, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    let text = Option::<String>::deserialize(d)?;
    if let Some(text) = &text {
        check_len(text, MAX).map_err(de::Error::custom)?;
    }
    Ok(text)
}

/// serde `deserialize_with` for a list of at most `ITEMS` strings of at most
/// `MAX` characters each; an error names the item (`nodeRoleNames[3]`).
pub fn strings<'de, const ITEMS: usize, const MAX: usize, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<String>, D::Error> {
    let items: Vec<Bounded<MAX>> = d.deserialize_seq(BoundedSeq::<Bounded<MAX>, ITEMS>::new())?;
    Ok(items.into_iter().map(|b| b.0).collect())
}

/// serde `deserialize_with` for a list of at most `ITEMS` values of `T`
/// (whose own fields carry their bounds).
pub fn list<'de, const ITEMS: usize, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    d.deserialize_seq(BoundedSeq::<T, ITEMS>::new())
}

/// As [`list`], for an optional list (the field needs `#[serde(default)]`).
pub fn option_list<'de, const ITEMS: usize, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<T>>, D::Error> {
    d.deserialize_option(OptionalSeq::<T, ITEMS>(PhantomData))
}

/// The `maxLength` and `maxItems` an OpenAPI schema declares, by path:
/// `a.b` for a string, `a[]` for a list's `maxItems`, `a[].b` inside a
/// list's objects, `a[]item` for a list's string items. A string or list
/// without its bound is an error naming it. For tests that hold the CRDs
/// to these constants.
#[cfg(test)]
pub(crate) fn declared_bounds(
    schema: &serde_json::Value,
) -> Result<std::collections::BTreeMap<String, usize>, String> {
    fn walk(
        schema: &serde_json::Value,
        path: &str,
        out: &mut std::collections::BTreeMap<String, usize>,
    ) -> Result<(), String> {
        let bound = |key: &str| {
            schema
                .get(key)
                .and_then(serde_json::Value::as_u64)
                .map(|n| n as usize)
                .ok_or_else(|| format!("{path} declares no {key}"))
        };
        match schema.get("type").and_then(serde_json::Value::as_str) {
            Some("string") => {
                out.insert(path.to_string(), bound("maxLength")?);
            }
            Some("array") => {
                let list = format!("{path}[]");
                out.insert(list.clone(), bound("maxItems")?);
                let items = &schema["items"];
                if items.get("type").and_then(serde_json::Value::as_str) == Some("string") {
                    out.insert(format!("{list}item"), {
                        items
                            .get("maxLength")
                            .and_then(serde_json::Value::as_u64)
                            .ok_or_else(|| format!("{list} items declare no maxLength"))?
                            as usize
                    });
                } else {
                    walk(items, &format!("{list}."), out)?;
                }
            }
            _ => {
                if let Some(properties) = schema.get("properties").and_then(|p| p.as_object()) {
                    for (name, property) in properties {
                        let child = if path.is_empty() || path.ends_with('.') {
                            format!("{path}{name}")
                        } else {
                            format!("{path}.{name}")
                        };
                        walk(property, &child, out)?;
                    }
                }
            }
        }
        Ok(())
    }
    let mut out = std::collections::BTreeMap::new();
    walk(schema, "", &mut out)?;
    Ok(out)
}

/// A string checked against `MAX` as it is decoded.
struct Bounded<const MAX: usize>(String);

impl<'de, const MAX: usize> Deserialize<'de> for Bounded<MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        string::<MAX, D>(d).map(Bounded)
    }
}

/// Reads a sequence, refusing it as soon as it is known to hold more than
/// `ITEMS` values (from its size hint, else at the first one too many).
struct BoundedSeq<T, const ITEMS: usize>(PhantomData<T>);

impl<T, const ITEMS: usize> BoundedSeq<T, ITEMS> {
    fn new() -> Self {
        Self(PhantomData)
    }
}

impl<'de, T: Deserialize<'de>, const ITEMS: usize> Visitor<'de> for BoundedSeq<T, ITEMS> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a list of at most {ITEMS} items")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        if let Some(len) = seq.size_hint()
            && len > ITEMS
        {
            return Err(de::Error::custom(too_many(ITEMS, len)));
        }
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(ITEMS));
        while let Some(item) = seq.next_element::<T>()? {
            if items.len() == ITEMS {
                return Err(de::Error::custom(format!(
                    "must have at most {ITEMS} items"
                )));
            }
            items.push(item);
        }
        Ok(items)
    }
}

struct OptionalSeq<T, const ITEMS: usize>(PhantomData<T>);

impl<'de, T: Deserialize<'de>, const ITEMS: usize> Visitor<'de> for OptionalSeq<T, ITEMS> {
    type Value = Option<Vec<T>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "null or a list of at most {ITEMS} items")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(BoundedSeq::<T, ITEMS>::new()).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdk::request::decode;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        #[serde(default, deserialize_with = "string::<4, _>")]
        name: String,
        #[serde(default, deserialize_with = "option_string::<4, _>")]
        label: Option<String>,
        #[serde(default, deserialize_with = "strings::<2, 3, _>")]
        roles: Vec<String>,
        #[serde(default, deserialize_with = "option_list::<2, Item, _>")]
        items: Option<Vec<Item>>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Item {
        #[serde(deserialize_with = "string::<3, _>")]
        id: String,
    }

    #[test]
    fn bounds_name_the_field() {
        let ok: Sample = decode(
            json!({"name": "abcd", "label": "éééé", "roles": ["a", "abc"], "items": [{"id": "x"}]}),
        )
        .expect("within bounds");
        assert_eq!(ok.label.as_deref(), Some("éééé"));
        let ok: Sample = decode(json!({"items": null})).expect("null list");
        assert_eq!(ok.items, None);
        let cases = [
            (
                json!({"name": "abcde"}),
                "name",
                "at most 4 characters, got 5",
            ),
            (
                json!({"label": "x".repeat(1 << 20)}),
                "label",
                "got 1048576",
            ),
            (
                json!({"roles": ["a", "b", "c"]}),
                "roles",
                "at most 2 items, got 3",
            ),
            (
                json!({"roles": ["a", "abcd"]}),
                "roles[1]",
                "at most 3 characters",
            ),
            (json!({"roles": "a"}), "roles", "invalid type"),
            (
                json!({"items": [{"id": "x"}, {"id": "y"}, {"id": "z"}]}),
                "items",
                "at most 2 items",
            ),
            (
                json!({"items": [{"id": "wxyz"}]}),
                "items[0].id",
                "at most 3 characters",
            ),
        ];
        for (value, path, message) in cases {
            let err = decode::<Sample>(value.clone()).unwrap_err();
            assert_eq!(err.path, path, "{value}");
            assert!(err.message.contains(message), "{path}: {}", err.message);
        }
    }

    #[test]
    fn lengths_count_characters_and_stop_early() {
        assert!(check_len("abc", 3).is_ok());
        assert!(check_len("ééé", 3).is_ok());
        assert_eq!(check_len("abcd", 3), Err(too_long(3, 4)));
        assert!(check_len("", 0).is_ok());
    }
}
