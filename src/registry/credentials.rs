//! AWS credentials handed to the function by Crossplane.
//!
//! A Composition step can pass a credentials entry (`RunFunctionRequest.credentials`,
//! whose `CredentialData.data` is a map of bytes). Two shapes are accepted:
//!
//! * flat keys: `aws_access_key_id`, `aws_secret_access_key` and optionally
//!   `aws_session_token`;
//! * one key `credentials` holding an AWS shared-credentials file (INI), the
//!   shape provider-aws secrets use, read from its `[default]` profile.
//!
//! Without an entry the registry client uses the default AWS credential chain
//! (environment, profile, IRSA web identity, EKS Pod Identity / container
//! credentials).
//!
//! Secrets never appear in `Debug` output or in error messages.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The flat key holding the access key id.
pub const ACCESS_KEY_ID: &str = "aws_access_key_id";
/// The flat key holding the secret access key.
pub const SECRET_ACCESS_KEY: &str = "aws_secret_access_key";
/// The flat key holding the (optional) session token.
pub const SESSION_TOKEN: &str = "aws_session_token";
/// The key holding a shared-credentials INI file.
pub const INI_KEY: &str = "credentials";
/// The INI profile read from `credentials`.
pub const INI_PROFILE: &str = "default";

/// Static AWS credentials.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl AwsCredentials {
    pub fn new(
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
        session_token: Option<String>,
    ) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token,
        }
    }

    /// Reads a Crossplane credentials entry (`CredentialData.data`).
    pub fn from_credential_data(data: &BTreeMap<String, Vec<u8>>) -> Result<Self> {
        if data.contains_key(ACCESS_KEY_ID) || data.contains_key(SECRET_ACCESS_KEY) {
            let get = |key: &str| -> Result<Option<String>> {
                match data.get(key) {
                    None => Ok(None),
                    Some(bytes) => text(key, bytes).map(Some),
                }
            };
            let access = get(ACCESS_KEY_ID)?.ok_or_else(|| missing(ACCESS_KEY_ID, "the entry"))?;
            let secret =
                get(SECRET_ACCESS_KEY)?.ok_or_else(|| missing(SECRET_ACCESS_KEY, "the entry"))?;
            let token = get(SESSION_TOKEN)?;
            return Self::checked(access, secret, token, "the entry");
        }
        if let Some(ini) = data.get(INI_KEY) {
            let ini = std::str::from_utf8(ini).map_err(|_| {
                Error::Credentials(format!("credentials key {INI_KEY:?} is not UTF-8 text"))
            })?;
            return Self::from_ini(ini);
        }
        let mut keys: Vec<&str> = data.keys().map(String::as_str).collect();
        keys.sort_unstable();
        Err(Error::Credentials(format!(
            "credentials entry has neither {ACCESS_KEY_ID:?}/{SECRET_ACCESS_KEY:?} nor a \
             shared-credentials file under {INI_KEY:?} (keys present: {keys:?})"
        )))
    }

    /// Reads the `[default]` profile of an AWS shared-credentials file.
    pub fn from_ini(ini: &str) -> Result<Self> {
        let mut section: Option<&str> = None;
        let mut seen_default = false;
        let mut values: HashMap<&str, &str> = HashMap::new();
        for raw in ini.lines() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(rest) = line.strip_prefix('[') {
                let name = rest.strip_suffix(']').unwrap_or(rest).trim();
                section = Some(name);
                seen_default |= name == INI_PROFILE;
                continue;
            }
            if section != Some(INI_PROFILE) {
                continue;
            }
            if let Some((key, value)) = line.split_once('=') {
                values.insert(key.trim(), value.trim());
            }
        }
        let place = format!("the [{INI_PROFILE}] profile of the {INI_KEY:?} file");
        if !seen_default {
            return Err(Error::Credentials(format!(
                "the {INI_KEY:?} file has no [{INI_PROFILE}] profile"
            )));
        }
        let get = |key: &str| values.get(key).map(|v| v.to_string());
        let access = get(ACCESS_KEY_ID).ok_or_else(|| missing(ACCESS_KEY_ID, &place))?;
        let secret = get(SECRET_ACCESS_KEY).ok_or_else(|| missing(SECRET_ACCESS_KEY, &place))?;
        Self::checked(access, secret, get(SESSION_TOKEN), &place)
    }

    fn checked(access: String, secret: String, token: Option<String>, place: &str) -> Result<Self> {
        let access = access.trim().to_string();
        let secret = secret.trim().to_string();
        if access.is_empty() {
            return Err(empty(ACCESS_KEY_ID, place));
        }
        if secret.is_empty() {
            return Err(empty(SECRET_ACCESS_KEY, place));
        }
        let token = token
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        Ok(Self::new(access, secret, token))
    }

    /// A stable identity for keying clients and caches: the access key id and
    /// a hash of the secret parts (so rotated secrets get a fresh client, and no
    /// secret is kept as a key).
    pub fn identity(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.access_key_id.as_bytes());
        h.update([0]);
        h.update(self.secret_access_key.as_bytes());
        h.update([0]);
        if let Some(t) = &self.session_token {
            h.update(t.as_bytes());
        }
        let digest = h.finalize();
        let mut out = String::with_capacity(self.access_key_id.len() + 17);
        out.push_str(&self.access_key_id);
        out.push('/');
        for b in &digest[..8] {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }

    /// The SDK's form of these credentials.
    pub fn to_sdk(&self) -> aws_sdk_ecr::config::Credentials {
        aws_sdk_ecr::config::Credentials::new(
            self.access_key_id.clone(),
            self.secret_access_key.clone(),
            self.session_token.clone(),
            None,
            "crossplane-credentials",
        )
    }
}

fn text(key: &str, bytes: &[u8]) -> Result<String> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| Error::Credentials(format!("credentials key {key:?} is not UTF-8 text")))
}

fn missing(key: &str, place: &str) -> Error {
    Error::Credentials(format!("{place} has no {key:?}"))
}

fn empty(key: &str, place: &str) -> Error {
    Error::Credentials(format!("{key:?} in {place} is empty"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn flat_keys() {
        let c = AwsCredentials::from_credential_data(&data(&[
            ("aws_access_key_id", "AKIDEXAMPLE"),
            ("aws_secret_access_key", "s3cr3t\n"),
        ]))
        .unwrap();
        assert_eq!(c, AwsCredentials::new("AKIDEXAMPLE", "s3cr3t", None));
        let c = AwsCredentials::from_credential_data(&data(&[
            ("aws_access_key_id", "ASIA1"),
            ("aws_secret_access_key", "s"),
            ("aws_session_token", "tok"),
        ]))
        .unwrap();
        assert_eq!(c.session_token.as_deref(), Some("tok"));
    }

    #[test]
    fn ini_default_profile() {
        let ini = "# provider-aws style\n[other]\naws_access_key_id = WRONG\n\
                   aws_secret_access_key = WRONG\n\n[default]\naws_access_key_id = AKID\n\
                   aws_secret_access_key=SECRET\naws_session_token = TOKEN\n";
        let c = AwsCredentials::from_credential_data(&data(&[("credentials", ini)])).unwrap();
        assert_eq!(
            c,
            AwsCredentials::new("AKID", "SECRET", Some("TOKEN".into()))
        );
    }

    #[test]
    fn errors_name_the_missing_key_and_hide_secrets() {
        let e = AwsCredentials::from_credential_data(&data(&[("aws_access_key_id", "AKID")]))
            .unwrap_err();
        assert!(e.to_string().contains("aws_secret_access_key"), "{e}");
        let e =
            AwsCredentials::from_credential_data(&data(&[("aws_secret_access_key", "TOPSECRET")]))
                .unwrap_err();
        assert!(e.to_string().contains("aws_access_key_id"), "{e}");
        assert!(!e.to_string().contains("TOPSECRET"), "{e}");
        let e = AwsCredentials::from_credential_data(&data(&[(
            "credentials",
            "[default]\naws_secret_access_key = TOPSECRET\n",
        )]))
        .unwrap_err();
        assert!(e.to_string().contains("aws_access_key_id"), "{e}");
        assert!(!e.to_string().contains("TOPSECRET"), "{e}");
        let e = AwsCredentials::from_credential_data(&data(&[(
            "credentials",
            "[prod]\naws_access_key_id = A\naws_secret_access_key = B\n",
        )]))
        .unwrap_err();
        assert!(e.to_string().contains("[default]"), "{e}");
        let e = AwsCredentials::from_credential_data(&data(&[("token", "x")])).unwrap_err();
        assert!(e.to_string().contains("aws_access_key_id"), "{e}");
        assert!(e.is_transient());

        let c = AwsCredentials::new("AKID", "TOPSECRET", Some("TOKENVALUE".into()));
        let debug = format!("{c:?}");
        assert!(
            !debug.contains("TOPSECRET") && !debug.contains("TOKENVALUE"),
            "{debug}"
        );
        assert!(!c.identity().contains("TOPSECRET"));
        assert_ne!(
            c.identity(),
            AwsCredentials::new("AKID", "OTHER", None).identity()
        );
    }
}
