//! How requests are authenticated ([`Auth`]) and where the credentials
//! come from: the Docker config file's `auths`, read as
//! go-containerregistry reads it (credential helpers are not run).

use std::collections::HashMap;

use serde::Deserialize;

use super::error::{Error, Result};

/// How requests are authenticated.
#[derive(Clone, Debug, Default)]
pub enum Auth {
    /// No credentials; a Bearer challenge is answered anonymously.
    #[default]
    Anonymous,
    /// `user:password`, base64-encoded, as the Docker config file keeps it:
    /// sent to a token realm or as a `Basic` header when challenged.
    Basic(String),
    /// A ready `Authorization` header sent with every request (ECR's token).
    Header(String),
}

impl Auth {
    /// The credentials the Docker config file (`$DOCKER_CONFIG/config.json`,
    /// else `~/.docker/config.json`) holds for `host`, anonymous when it
    /// has none. Credential helpers are not run.
    pub fn from_docker_config(host: &str) -> Result<Auth> {
        let Some(path) = docker_config_path() else {
            return Ok(Auth::Anonymous);
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Auth::Anonymous),
            Err(e) => {
                return Err(Error::Config {
                    registry: host.to_string(),
                    message: format!("reading {}: {e}", path.display()),
                });
            }
        };
        docker_config_auth(&text, host).map_err(|message| Error::Config {
            registry: host.to_string(),
            message: format!("{}: {message}", path.display()),
        })
    }
}

fn docker_config_path() -> Option<std::path::PathBuf> {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) => Some(std::path::PathBuf::from(dir).join("config.json")),
        None => std::env::var_os("HOME")
            .map(|home| std::path::PathBuf::from(home).join(".docker/config.json")),
    }
}

/// The hosts the Docker config file holds `host`'s own credentials for
/// too: a token realm on one of them may be sent those credentials. None
/// when the file cannot be read.
pub fn realm_hosts_from_docker_config(host: &str) -> Vec<String> {
    docker_config_path()
        .and_then(|path| std::fs::read_to_string(path).ok())
        .map(|text| docker_config_realm_hosts(&text, host))
        .unwrap_or_default()
}

/// `(host, auth)` of each `auths` entry of a Docker config file. Keys may
/// be a bare host or a URL (`https://host/v1/`).
fn docker_config_entries(text: &str) -> std::result::Result<Vec<(String, String)>, String> {
    #[derive(Deserialize)]
    struct Config {
        #[serde(default)]
        auths: HashMap<String, Entry>,
    }
    #[derive(Deserialize)]
    struct Entry {
        #[serde(default)]
        auth: Option<String>,
    }
    let config: Config =
        serde_json::from_str(text).map_err(|e| format!("not a Docker config file: {e}"))?;
    Ok(config
        .auths
        .into_iter()
        .filter_map(|(key, entry)| {
            let key = key
                .strip_prefix("https://")
                .or_else(|| key.strip_prefix("http://"))
                .unwrap_or(&key);
            let host = key.split('/').next().unwrap_or_default().to_string();
            entry
                .auth
                .filter(|a| !a.is_empty())
                .map(|auth| (host, auth))
        })
        .collect())
}

/// The `auth` entry of a Docker config file for `host`.
pub fn docker_config_auth(text: &str, host: &str) -> std::result::Result<Auth, String> {
    Ok(docker_config_entries(text)?
        .into_iter()
        .find(|(h, _)| h == host)
        .map_or(Auth::Anonymous, |(_, auth)| Auth::Basic(auth)))
}

/// The other hosts a Docker config file holds `host`'s credentials for.
pub fn docker_config_realm_hosts(text: &str, host: &str) -> Vec<String> {
    let Ok(entries) = docker_config_entries(text) else {
        return Vec::new();
    };
    let Some((_, auth)) = entries.iter().find(|(h, _)| h == host) else {
        return Vec::new();
    };
    entries
        .iter()
        .filter(|(h, a)| h != host && a == auth)
        .map(|(h, _)| h.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn docker_config_entries() {
        let config = r#"{"auths": {
            "https://index.docker.io/v1/": {"auth": "ZG9ja2VyOmh1Yg=="},
            "xpkg.upbound.io": {"auth": "dXNlcjpwYXNz"},
            "https://127.0.0.1:5000": {"auth": "bG9jYWw6bG9jYWw="}
        }}"#;
        let basic = |host| match docker_config_auth(config, host).expect("parses") {
            Auth::Basic(b) => Some(b),
            _ => None,
        };
        assert_eq!(basic("xpkg.upbound.io").as_deref(), Some("dXNlcjpwYXNz"));
        assert_eq!(basic("127.0.0.1:5000").as_deref(), Some("bG9jYWw6bG9jYWw="));
        assert_eq!(
            basic("index.docker.io").as_deref(),
            Some("ZG9ja2VyOmh1Yg==")
        );
        assert_eq!(basic("xpkg.crossplane.io"), None);
        assert!(docker_config_auth("{", "x").is_err());
    }

    #[test]
    fn realm_hosts_hold_the_same_credentials() {
        let config = r#"{"auths": {
            "registry.example": {"auth": "c2FtZQ=="},
            "https://auth.example/v1/": {"auth": "c2FtZQ=="},
            "other.example": {"auth": "b3RoZXI="},
            "empty.example": {"auth": ""}
        }}"#;
        assert_eq!(
            docker_config_realm_hosts(config, "registry.example"),
            ["auth.example"]
        );
        assert!(docker_config_realm_hosts(config, "nowhere.example").is_empty());
        assert!(docker_config_realm_hosts("{", "registry.example").is_empty());
    }

    proptest! {
        #[test]
        fn docker_config_parsing_never_panics(text in ".{0,200}", host in "[a-z0-9.:]{0,20}") {
            let _ = docker_config_auth(&text, &host);
        }
    }
}
