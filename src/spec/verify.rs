//! The input's `verify`: the platform's signing authorities. A package
//! whose repository matches an authority's `repositories` is installed
//! only at a version that carries a valid cosign signature, for its own
//! digest, by one of the authorities that match it. The gate itself is
//! `resolve::signature`'s; reading and checking signatures is
//! `crate::signature`'s.
//!
//! Read straight into its validated form: each public key is parsed as it
//! is decoded, so a bad one is an error naming its field
//! (`verify.authorities[1].key.publicKey`), never a package skipped later.
//! Keys are ECDSA P-256 (`cosign generate-key-pair`); keyless authorities
//! (a trusted root and identities) are not read yet and are refused.

use serde::{Deserialize, Deserializer, de};

use super::glob::glob_match;
use super::limits::{self, MAX_AUTHORITIES, MAX_AUTHORITY_NAME_LEN, MAX_PUBLIC_KEY_PEM_LEN};
use crate::signature::{PublicKey, Signer};

/// `verify`: who must have signed which packages.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Verify {
    /// 1 to [`MAX_AUTHORITIES`], names unique.
    #[serde(deserialize_with = "authorities")]
    pub authorities: Vec<Authority>,
    /// Also compose Crossplane's own verification of the same authorities
    /// (`crate::compose::verification`): a Secret per key and ImageConfigs
    /// with `spec.verification`, for a Crossplane run with
    /// `--enable-signature-verification` (alpha). Default false.
    #[serde(default)]
    pub compose_image_config: bool,
    /// The namespace Crossplane runs in, where it reads the keys' Secrets
    /// (its `POD_NAMESPACE`); a DNS label, default `crossplane-system`.
    #[serde(
        default = "default_crossplane_namespace",
        deserialize_with = "crossplane_namespace"
    )]
    pub crossplane_namespace: String,
}

fn default_crossplane_namespace() -> String {
    "crossplane-system".to_string()
}

fn crossplane_namespace<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let namespace = limits::string::<{ limits::MAX_NAMESPACE_LEN }, D>(d)?;
    if !crate::names::is_label(&namespace) {
        return Err(de::Error::custom(
            "must be a DNS label (a Kubernetes namespace name)",
        ));
    }
    Ok(namespace)
}

/// `verify.authorities[]`: one signer and the repositories it vouches for.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Authority {
    /// Named in skipped reasons (`signed by authority team-a, ...`).
    #[serde(deserialize_with = "name")]
    pub name: String,
    /// Globs (Go's `path.Match`, as `scan.repositories`) of the ECR
    /// repositories whose packages must carry its signature (or another
    /// matching authority's).
    #[serde(deserialize_with = "super::scan::repositories")]
    pub repositories: Vec<String>,
    /// The public key its signatures verify with.
    pub key: Key,
    /// Keyless signing (a CA and identities): not read yet, so always
    /// `None` (see [`Keyless`]).
    #[serde(default)]
    pub keyless: Option<Keyless>,
}

/// `verify.authorities[].keyless`, which this version refuses with an
/// error naming the field: no value of it exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keyless {}

impl<'de> Deserialize<'de> for Keyless {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let _ = de::IgnoredAny::deserialize(d)?;
        Err(de::Error::custom(
            "keyless authorities are not supported by this version of the function; use key.publicKey",
        ))
    }
}

/// `verify.authorities[].key`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Key {
    /// A PEM ECDSA P-256 public key (`cosign.pub`).
    #[serde(deserialize_with = "public_key")]
    pub public_key: PublicKey,
}

impl Verify {
    /// Whether packages of `repository` must be signed.
    pub fn covers(&self, repository: &str) -> bool {
        self.authorities.iter().any(|a| a.covers(repository))
    }

    /// Every authority's key, by name.
    pub fn signers(&self) -> Vec<Signer<'_>> {
        self.authorities
            .iter()
            .map(|a| Signer {
                authority: &a.name,
                key: &a.key.public_key,
            })
            .collect()
    }

    /// The authority called `name`.
    pub fn authority(&self, name: &str) -> Option<&Authority> {
        self.authorities.iter().find(|a| a.name == name)
    }
}

impl Authority {
    /// Whether this authority vouches for packages of `repository`.
    pub fn covers(&self, repository: &str) -> bool {
        self.repositories.iter().any(|p| glob_match(p, repository))
    }
}

fn authorities<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Authority>, D::Error> {
    let list = limits::list::<MAX_AUTHORITIES, Authority, D>(d)?;
    if list.is_empty() {
        return Err(de::Error::custom("must list at least one authority"));
    }
    for (i, a) in list.iter().enumerate() {
        if let Some(j) = list[..i].iter().position(|b| b.name == a.name) {
            return Err(de::Error::custom(format!(
                "items {j} and {i} are both named {:?}",
                a.name
            )));
        }
    }
    Ok(list)
}

fn name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let name = limits::string::<MAX_AUTHORITY_NAME_LEN, D>(d)?;
    if name.trim().is_empty() {
        return Err(de::Error::custom("must not be empty"));
    }
    Ok(name)
}

fn public_key<'de, D: Deserializer<'de>>(d: D) -> Result<PublicKey, D::Error> {
    let pem = limits::string::<MAX_PUBLIC_KEY_PEM_LEN, D>(d)?;
    PublicKey::from_pem(&pem).map_err(|e| de::Error::custom(crate::error::error_chain(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdk::request::decode;
    use crate::signature::fixtures::PEM;
    use serde_json::json;

    fn authority(name: &str, repositories: &[&str]) -> serde_json::Value {
        json!({"name": name, "repositories": repositories, "key": {"publicKey": PEM}})
    }

    #[test]
    fn reads_authorities() {
        let verify: Verify = decode(json!({"authorities": [
            authority("team-a", &["team-a/*"]),
            authority("all", &["*/*"]),
        ]}))
        .expect("valid");
        assert!(verify.covers("team-a/provider"));
        assert!(!verify.covers("single"));
        assert!(verify.authorities[0].covers("team-a/provider"));
        assert!(!verify.authorities[0].covers("team-b/provider"));
        assert_eq!(verify.signers().len(), 2);
        assert_eq!(
            verify.authority("all").map(|a| a.name.as_str()),
            Some("all")
        );
    }

    #[test]
    fn each_bad_field_is_named() {
        let one = |a: serde_json::Value| json!({"authorities": [a]});
        let cases = [
            (json!({}), ".", "missing field `authorities`"),
            (json!({"authorities": []}), "authorities", "at least one"),
            (
                json!({"authorities": [authority("a", &["*"]), authority("a", &["x"])]}),
                "authorities",
                "items 0 and 1 are both named \"a\"",
            ),
            (
                json!({"authorities": vec![authority("a", &["*"]); MAX_AUTHORITIES + 1]}),
                "authorities",
                "at most",
            ),
            (
                one(json!({"name": "", "repositories": ["*"], "key": {"publicKey": PEM}})),
                "authorities[0].name",
                "must not be empty",
            ),
            (
                one(json!({"name": "a", "repositories": [], "key": {"publicKey": PEM}})),
                "authorities[0].repositories",
                "at least one",
            ),
            (
                one(json!({"name": "a", "repositories": ["*"], "key": {"publicKey": "x"}})),
                "authorities[0].key.publicKey",
                "ECDSA P-256",
            ),
            (
                one(
                    json!({"name": "a", "repositories": ["*"], "key": {"publicKey": "x".repeat(MAX_PUBLIC_KEY_PEM_LEN + 1)}}),
                ),
                "authorities[0].key.publicKey",
                "at most",
            ),
            (
                one(json!({"name": "a", "repositories": ["*"]})),
                "authorities[0]",
                "missing field `key`",
            ),
            (
                one(
                    json!({"name": "a", "repositories": ["*"], "key": {"publicKey": PEM}, "keyless": {}}),
                ),
                "authorities[0].keyless",
                "not supported",
            ),
            (
                one(json!({"name": "a", "repositories": ["*"], "key": {"publicKey": PEM, "x": 1}})),
                "authorities[0].key.x",
                "unknown field",
            ),
        ];
        for (value, path, message) in cases {
            let err = decode::<Verify>(value.clone()).unwrap_err();
            assert_eq!(err.path, path, "{value}: {}", err.message);
            assert!(err.message.contains(message), "{path}: {}", err.message);
        }
    }
}
