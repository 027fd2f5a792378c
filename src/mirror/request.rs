//! What `mirror` is asked to copy: package references from the command
//! line, or the packages of an XR, with the mirror table that maps upstream
//! paths into ECR.

use serde_json::{Value as Json, json};

use super::Error;
use crate::spec::input::{Mirror, default_mirrors};
use crate::spec::{Input, XrSpec};

/// Longest package reference accepted on the command line.
const MAX_REFERENCE: usize = 1024;

/// `PACKAGE[:TAG | @CONSTRAINT | @DIGEST]` from the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackageRef {
    /// `host[:port]/path`, without tag.
    pub path: String,
    pub version: Requested,
}

/// Which version of a package the command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requested {
    /// The highest release tag (no prereleases).
    Latest,
    /// This tag, which must exist.
    Tag(String),
    /// The highest tag satisfying a Masterminds constraint, or a digest.
    Version(String),
}

impl PackageRef {
    pub fn parse(text: &str) -> Result<Self, Error> {
        let bad = |message: &str| Error::Usage(format!("package {text:?}: {message}"));
        if text.len() > MAX_REFERENCE {
            return Err(bad(&format!("longer than {MAX_REFERENCE} characters")));
        }
        let (path, version) = match text.split_once('@') {
            Some((path, version)) if !version.trim().is_empty() => {
                (path, Requested::Version(version.trim().to_string()))
            }
            Some(_) => return Err(bad("nothing after '@'")),
            None => match text.rsplit_once(':') {
                // A colon after the last slash starts a tag; one before it
                // is the registry's port.
                Some((path, tag)) if !tag.contains('/') => {
                    if !crate::version::is_tag(tag) {
                        return Err(bad(&format!("{tag:?} is not a valid tag")));
                    }
                    (path, Requested::Tag(tag.to_string()))
                }
                _ => (text, Requested::Latest),
            },
        };
        let Some((host, rest)) = path.split_once('/') else {
            return Err(bad(
                "name the registry too, e.g. xpkg.upbound.io/upbound/provider-aws-s3",
            ));
        };
        let looks_like_host = host.contains('.') || host.contains(':') || host == "localhost";
        if !looks_like_host || rest.is_empty() {
            return Err(bad(
                "name the registry too, e.g. xpkg.upbound.io/upbound/provider-aws-s3",
            ));
        }
        if let Err(e) = crate::reference::Repository::parse(rest, "the repository") {
            return Err(bad(&e.to_string()));
        }
        if super::upstream::Source::parse(path).is_none() {
            return Err(bad("the registry host is not name[:port]"));
        }
        if let Requested::Version(v) = &version
            && v.contains(':')
            && let Err(e) = crate::reference::Digest::parse(v, "the digest")
        {
            return Err(bad(&e.to_string()));
        }
        Ok(Self {
            path: path.to_string(),
            version,
        })
    }
}

/// `--upstream-endpoint HOST=URL`.
pub fn parse_endpoint(text: &str) -> Result<(String, String), String> {
    let (host, url) = text.split_once('=').ok_or_else(|| {
        format!("{text:?}: expected HOST=URL, e.g. xpkg.upbound.io=https://proxy.example.com")
    })?;
    if host.is_empty() || host.contains('/') {
        return Err(format!("{text:?}: {host:?} is not a registry host"));
    }
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!("{text:?}: {url:?} is not an http(s) URL"));
    }
    Ok((host.to_string(), url.trim_end_matches('/').to_string()))
}

/// `--mirror UPSTREAM=PREFIX`.
pub fn parse_mirror(text: &str) -> Result<Mirror, String> {
    let (upstream, prefix) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected UPSTREAM=PREFIX, e.g. xpkg.upbound.io/="))?;
    if upstream.is_empty() {
        return Err(format!("{text:?}: the upstream prefix is empty"));
    }
    Ok(Mirror {
        upstream: upstream.to_string(),
        repository_prefix: prefix.to_string(),
    })
}

/// The mirror table: `--mirror` entries, else the input file's, else the
/// default table with `--repository-prefix` in front of every repository.
pub fn mirrors(
    flags: &[Mirror],
    input: Option<&Input>,
    repository_prefix: Option<&str>,
) -> Vec<Mirror> {
    if !flags.is_empty() {
        return flags.to_vec();
    }
    if let Some(input) = input {
        return input.mirrors.clone();
    }
    let mut table = default_mirrors();
    for mirror in &mut table {
        mirror.repository_prefix = repository_prefix.unwrap_or_default().to_string();
    }
    table
}

/// An XR with the given registry and packages, validated as the function
/// validates an XR's spec.
pub fn spec(account_id: &str, region: &str, packages: Vec<Json>) -> Result<XrSpec, Error> {
    let composite = json!({
        "spec": {
            "registry": {"accountId": account_id, "region": region},
            "packages": packages,
        }
    });
    XrSpec::from_composite(&composite).map_err(Error::Resolve)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn package_references() {
        let ok: &[(&str, &str, Requested)] = &[
            (
                "xpkg.upbound.io/upbound/provider-aws-s3",
                "xpkg.upbound.io/upbound/provider-aws-s3",
                Requested::Latest,
            ),
            (
                "xpkg.upbound.io/upbound/provider-aws-s3:v1.2.0",
                "xpkg.upbound.io/upbound/provider-aws-s3",
                Requested::Tag("v1.2.0".into()),
            ),
            (
                "127.0.0.1:5000/upbound/provider-family-aws",
                "127.0.0.1:5000/upbound/provider-family-aws",
                Requested::Latest,
            ),
            (
                "127.0.0.1:5000/upbound/provider-family-aws:v2",
                "127.0.0.1:5000/upbound/provider-family-aws",
                Requested::Tag("v2".into()),
            ),
            (
                "xpkg.upbound.io/upbound/provider-aws-s3@>=v1.0.0, <v2",
                "xpkg.upbound.io/upbound/provider-aws-s3",
                Requested::Version(">=v1.0.0, <v2".into()),
            ),
            (
                "localhost/a/b@sha256:0000000000000000000000000000000000000000000000000000000000000000",
                "localhost/a/b",
                Requested::Version(
                    "sha256:0000000000000000000000000000000000000000000000000000000000000000"
                        .into(),
                ),
            ),
        ];
        for (text, path, version) in ok {
            let parsed = PackageRef::parse(text).expect(text);
            assert_eq!(parsed.path, *path, "{text}");
            assert_eq!(&parsed.version, version, "{text}");
        }
        for bad in [
            "upbound/provider-aws-s3",
            "provider-aws-s3:v1",
            "xpkg.upbound.io/",
            "xpkg.upbound.io/a/b@",
            "xpkg.upbound.io/a/b:v1+build",
            "xpkg.upbound.io/a/../b",
            "xpkg.upbound.io/a/b/..",
            "xpkg.upbound.io/A/b",
            "xpkg.upbound.io/a/b?x=1",
            "xpkg.upbound.io/a/b#x",
            "xpkg.upbound.io/a b",
            "user@xpkg.upbound.io/a/b",
            "xpkg.upbound.io/a/b@sha256:v9.9.9",
        ] {
            let error = PackageRef::parse(bad).expect_err(bad).to_string();
            assert!(error.contains(bad), "{error}");
        }
    }

    #[test]
    fn mirror_flags() {
        assert_eq!(
            parse_mirror("xpkg.upbound.io/=mirror/").expect("parses"),
            Mirror {
                upstream: "xpkg.upbound.io/".into(),
                repository_prefix: "mirror/".into()
            }
        );
        assert_eq!(
            parse_mirror("127.0.0.1:5000/=")
                .expect("parses")
                .repository_prefix,
            ""
        );
        assert!(parse_mirror("xpkg.upbound.io/").is_err());
        assert!(parse_mirror("=x").is_err());
    }

    #[test]
    fn endpoint_flags() {
        assert_eq!(
            parse_endpoint("xpkg.upbound.io=http://127.0.0.1:5000/").expect("parses"),
            (
                "xpkg.upbound.io".to_string(),
                "http://127.0.0.1:5000".to_string()
            )
        );
        for bad in ["xpkg.upbound.io", "=http://x", "a/b=http://x", "x=ftp://y"] {
            assert!(parse_endpoint(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_mirror_table_comes_from_flags_then_input_then_defaults() {
        let flag = parse_mirror("a.example/=a/").expect("parses");
        let input = Input {
            mirrors: vec![parse_mirror("b.example/=b/").expect("parses")],
            ..Input::default()
        };
        assert_eq!(
            mirrors(std::slice::from_ref(&flag), Some(&input), None),
            [flag]
        );
        assert_eq!(mirrors(&[], Some(&input), Some("x/")), input.mirrors);
        let defaults = mirrors(&[], None, Some("mirror/"));
        assert_eq!(defaults.len(), 2);
        assert!(defaults.iter().all(|m| m.repository_prefix == "mirror/"));
    }

    proptest! {
        #[test]
        fn parsing_never_panics(text in ".{0,200}") {
            let _ = PackageRef::parse(&text);
        }
    }
}
