//! The input's `verify`: the platform's signing authorities. A package
//! whose repository matches an authority's `repositories` is installed
//! only at a version that carries a valid cosign signature, for its own
//! digest, by one of the authorities that match it. The gate itself is
//! `resolve::signature`'s; reading and checking signatures is
//! `crate::signature`'s.
//!
//! Read straight into its validated form: each public key and trusted
//! root is parsed as it is decoded, so a bad one is an error naming its
//! field (`verify.authorities[1].key.publicKey`,
//! `verify.authorities[1].keyless.trustedRoot`), never a package skipped
//! later; a subject regex likewise. Keys are ECDSA P-256 (`cosign
//! generate-key-pair`); keyless authorities hold a Sigstore trusted root
//! and the identities (OIDC issuer and subject) allowed to sign.

use serde::{Deserialize, Deserializer, de};

use super::glob::glob_match;
use super::limits::{
    self, MAX_AUTHORITIES, MAX_AUTHORITY_NAME_LEN, MAX_IDENTITY_LEN, MAX_KEYLESS_IDENTITIES,
    MAX_PUBLIC_KEY_PEM_LEN, MAX_TRUSTED_ROOT_LEN,
};
use crate::keyless::{Identity, Subject, TrustedRoot};
use crate::signature::{Keyless, PublicKey, Signer, Trust, field};

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
#[serde(try_from = "RawAuthority")]
pub struct Authority {
    /// Named in skipped reasons (`signed by authority team-a, ...`).
    pub name: String,
    /// Globs (Go's `path.Match`, as `scan.repositories`) of the ECR
    /// repositories whose packages must carry its signature (or another
    /// matching authority's).
    pub repositories: Vec<String>,
    /// Its `key` or its `keyless`, exactly one.
    pub trust: Trust,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawAuthority {
    #[serde(deserialize_with = "name")]
    name: String,
    #[serde(deserialize_with = "super::scan::repositories")]
    repositories: Vec<String>,
    #[serde(default)]
    key: Option<Key>,
    #[serde(default)]
    keyless: Option<KeylessInput>,
}

impl TryFrom<RawAuthority> for Authority {
    type Error = &'static str;

    fn try_from(raw: RawAuthority) -> Result<Self, Self::Error> {
        let trust = match (raw.key, raw.keyless) {
            (Some(key), None) => Trust::Key(key.public_key),
            (None, Some(keyless)) => Trust::Keyless(keyless.0),
            _ => return Err("must have exactly one of key and keyless"),
        };
        Ok(Self {
            name: raw.name,
            repositories: raw.repositories,
            trust,
        })
    }
}

/// `verify.authorities[].key`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Key {
    /// A PEM ECDSA P-256 public key (`cosign.pub`).
    #[serde(deserialize_with = "public_key")]
    public_key: PublicKey,
}

/// `verify.authorities[].keyless`: `trustedRoot` (a Sigstore
/// `trusted_root.json`, inline) and 1 to [`MAX_KEYLESS_IDENTITIES`] identities.
struct KeylessInput(Keyless);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawKeyless {
    #[serde(deserialize_with = "trusted_root")]
    trusted_root: (TrustedRoot, String),
    #[serde(deserialize_with = "identities")]
    identities: Vec<Identity>,
}

impl<'de> Deserialize<'de> for KeylessInput {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawKeyless::deserialize(d)?;
        let (root, json) = raw.trusted_root;
        Ok(Self(Keyless::new(root, json.as_bytes(), raw.identities)))
    }
}

/// `verify.authorities[].keyless.identities[]`: the certificate's OIDC
/// issuer, exactly, and its subject, exactly or by an unanchored regex.
#[derive(Deserialize)]
#[serde(try_from = "RawIdentity")]
struct IdentityInput(Identity);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawIdentity {
    #[serde(deserialize_with = "identity_text")]
    issuer: String,
    #[serde(default, deserialize_with = "some_identity_text")]
    subject: Option<String>,
    #[serde(default, deserialize_with = "subject_regex")]
    subject_reg_exp: Option<regex_lite::Regex>,
}

impl TryFrom<RawIdentity> for IdentityInput {
    type Error = &'static str;

    fn try_from(raw: RawIdentity) -> Result<Self, Self::Error> {
        let subject = match (raw.subject, raw.subject_reg_exp) {
            (Some(exact), None) => Subject::Exact(exact),
            (None, Some(re)) => Subject::Regex(re),
            _ => return Err("must have exactly one of subject and subjectRegExp"),
        };
        Ok(Self(Identity {
            issuer: raw.issuer,
            subject,
        }))
    }
}

impl Verify {
    /// Whether packages of `repository` must be signed.
    pub fn covers(&self, repository: &str) -> bool {
        self.authorities.iter().any(|a| a.covers(repository))
    }

    /// Every authority's trust, by name: those covering `repository`
    /// first, so a signature's verdict names one of them when it can.
    pub fn signers(&self, repository: &str) -> Vec<Signer<'_>> {
        let mut signers: Vec<(bool, Signer<'_>)> = self
            .authorities
            .iter()
            .map(|a| {
                let signer = Signer {
                    authority: &a.name,
                    trust: &a.trust,
                };
                (!a.covers(repository), signer)
            })
            .collect();
        signers.sort_by_key(|(later, _)| *later);
        signers.into_iter().map(|(_, s)| s).collect()
    }

    /// The authority called `name`.
    pub fn authority(&self, name: &str) -> Option<&Authority> {
        self.authorities.iter().find(|a| a.name == name)
    }

    /// A digest of the authorities (names, repositories, what each
    /// trusts), equal for policies that judge every signature alike: what
    /// a kept verdict is reused under.
    pub fn fingerprint(&self) -> [u8; 32] {
        use sha2::Digest;
        let mut hash = sha2::Sha256::new();
        for authority in &self.authorities {
            field(&mut hash, authority.name.as_bytes());
            field(
                &mut hash,
                &(authority.repositories.len() as u64).to_be_bytes(),
            );
            for repository in &authority.repositories {
                field(&mut hash, repository.as_bytes());
            }
            authority.trust.fingerprint(&mut hash);
        }
        hash.finalize().into()
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

fn trusted_root<'de, D: Deserializer<'de>>(d: D) -> Result<(TrustedRoot, String), D::Error> {
    let json = limits::string::<MAX_TRUSTED_ROOT_LEN, D>(d)?;
    let root = TrustedRoot::parse(json.as_bytes())
        .map_err(|e| de::Error::custom(crate::error::error_chain(&e)))?;
    Ok((root, json))
}

fn identities<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Identity>, D::Error> {
    let list = limits::list::<MAX_KEYLESS_IDENTITIES, IdentityInput, D>(d)?;
    if list.is_empty() {
        return Err(de::Error::custom("must list at least one identity"));
    }
    Ok(list.into_iter().map(|i| i.0).collect())
}

fn identity_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let text = limits::string::<MAX_IDENTITY_LEN, D>(d)?;
    if text.is_empty() {
        return Err(de::Error::custom("must not be empty"));
    }
    Ok(text)
}

fn some_identity_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    identity_text(d).map(Some)
}

fn subject_regex<'de, D: Deserializer<'de>>(d: D) -> Result<Option<regex_lite::Regex>, D::Error> {
    let text = identity_text(d)?;
    regex_lite::Regex::new(&text)
        .map(Some)
        .map_err(|e| de::Error::custom(format!("not a regular expression: {e}")))
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

    /// A trusted root that trusts nothing: enough to be read.
    const ROOT: &str = r#"{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1","tlogs":[],"certificateAuthorities":[]}"#;

    fn exact() -> serde_json::Value {
        json!({"issuer": "https://token.actions.githubusercontent.com", "subject": "https://github.com/org/repo/.github/workflows/release.yaml@refs/heads/main"})
    }

    fn keyless(identities: serde_json::Value) -> serde_json::Value {
        json!({"trustedRoot": ROOT, "identities": identities})
    }

    #[test]
    fn reads_keyless_authorities() {
        let verify: Verify = decode(json!({"authorities": [
            {"name": "ci", "repositories": ["team/*"], "keyless": keyless(json!([
                exact(),
                {"issuer": "https://accounts.example.com", "subjectRegExp": "@example\\.com$"},
            ]))},
        ]}))
        .expect("valid");
        let Trust::Keyless(k) = &verify.authorities[0].trust else {
            panic!("not keyless");
        };
        assert_eq!(k.identities.len(), 2);
        assert!(
            matches!(&k.identities[1].subject, Subject::Regex(re) if re.is_match("alice@example.com"))
        );
        assert_eq!(verify.clone(), verify, "equal to itself");
    }

    /// Equal policies share a fingerprint; any difference that could
    /// change a verdict changes it.
    #[test]
    fn fingerprints_tell_policies_apart() {
        let fingerprint = |authorities: serde_json::Value| {
            decode::<Verify>(json!({"authorities": authorities}))
                .expect("valid")
                .fingerprint()
        };
        let base = fingerprint(json!([authority("a", &["team/*"])]));
        // The same key spelt with other line breaks, and another flag.
        let respelt = PEM.replace('\n', "\r\n");
        let same =
            json!([{"name": "a", "repositories": ["team/*"], "key": {"publicKey": respelt}}]);
        assert_eq!(fingerprint(same), base);
        let regex = json!({"issuer": "https://token.actions.githubusercontent.com", "subjectRegExp": "https://github.com/org/repo/.github/workflows/release.yaml@refs/heads/main"});
        let other = [
            json!([authority("b", &["team/*"])]),
            json!([authority("a", &["team/*", "x/*"])]),
            json!([authority("a", &["team/*x"])]),
            json!([authority("a", &["team/*"]), authority("b", &["x/*"])]),
            json!([{"name": "a", "repositories": ["team/*"], "keyless": keyless(json!([exact()]))}]),
            json!([{"name": "a", "repositories": ["team/*"], "keyless": keyless(json!([regex]))}]),
        ];
        let mut seen = vec![base];
        for authorities in other {
            let found = fingerprint(authorities.clone());
            assert!(!seen.contains(&found), "{authorities}");
            seen.push(found);
        }
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
        assert_eq!(verify.signers("team-a/provider").len(), 2);
        assert_eq!(verify.signers("x/y")[0].authority, "all");
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
                "exactly one of key and keyless",
            ),
            (
                one(
                    json!({"name": "a", "repositories": ["*"], "key": {"publicKey": PEM}, "keyless": keyless(json!([exact()]))}),
                ),
                "authorities[0]",
                "exactly one of key and keyless",
            ),
            (
                one(json!({"name": "a", "repositories": ["*"], "key": {"publicKey": PEM, "x": 1}})),
                "authorities[0].key.x",
                "unknown field",
            ),
        ];
        refused(cases);
    }

    fn refused<const N: usize>(cases: [(serde_json::Value, &str, &str); N]) {
        for (value, path, message) in cases {
            let err = decode::<Verify>(value.clone()).unwrap_err();
            assert_eq!(err.path, path, "{value}: {}", err.message);
            assert!(err.message.contains(message), "{path}: {}", err.message);
        }
    }

    #[test]
    fn each_bad_keyless_field_is_named() {
        let one = |a: serde_json::Value| json!({"authorities": [a]});
        refused([
            (
                one(
                    json!({"name": "a", "repositories": ["*"], "keyless": {"trustedRoot": "{}", "identities": [exact()]}}),
                ),
                "authorities[0].keyless.trustedRoot",
                "trusted root",
            ),
            (
                one(json!({"name": "a", "repositories": ["*"], "keyless": keyless(json!([]))})),
                "authorities[0].keyless.identities",
                "at least one identity",
            ),
            (
                one(
                    json!({"name": "a", "repositories": ["*"], "keyless": keyless(json!(vec![exact(); MAX_KEYLESS_IDENTITIES + 1]))}),
                ),
                "authorities[0].keyless.identities",
                "at most",
            ),
            (
                one(
                    json!({"name": "a", "repositories": ["*"], "keyless": keyless(json!([{"issuer": "i", "subjectRegExp": "("}]))}),
                ),
                "authorities[0].keyless.identities[0].subjectRegExp",
                "not a regular expression",
            ),
            (
                one(
                    json!({"name": "a", "repositories": ["*"], "keyless": keyless(json!([{"issuer": "i", "subject": "s", "subjectRegExp": "s"}]))}),
                ),
                "authorities[0].keyless.identities[0]",
                "exactly one of subject and subjectRegExp",
            ),
            (
                one(
                    json!({"name": "a", "repositories": ["*"], "keyless": keyless(json!([{"issuer": "", "subject": "s"}]))}),
                ),
                "authorities[0].keyless.identities[0].issuer",
                "must not be empty",
            ),
            (
                one(
                    json!({"name": "a", "repositories": ["*"], "keyless": keyless(json!([{"issuer": "i", "subject": "x".repeat(MAX_IDENTITY_LEN + 1)}]))}),
                ),
                "authorities[0].keyless.identities[0].subject",
                "at most",
            ),
        ]);
    }
}
