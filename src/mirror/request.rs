//! What `mirror` is asked to copy: package references from the command
//! line, or the packages of an XR, with the mirror table that maps upstream
//! paths into ECR and the function input the run resolves with.

use serde_json::{Value as Json, json};

use super::args::MirrorArgs;
use super::error::Error;
use super::upstream::{Location, Reader};
use crate::registry::Registry;
use crate::spec::input::{Mirror, default_mirrors};
use crate::spec::load;
use crate::spec::verify::Verify;
use crate::spec::{Input, XrSpec};
use crate::version::{Constraint, select_highest};

/// Longest package reference accepted on the command line.
const MAX_REFERENCE: usize = 1024;

/// `PACKAGE[:TAG | @CONSTRAINT | @DIGEST]` from the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackageRef {
    /// `host[:port]/path`, without tag.
    pub path: String,
    pub version: VersionRequest,
}

/// Which version of a package the command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VersionRequest {
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
                (path, VersionRequest::Version(version.trim().to_string()))
            }
            Some(_) => return Err(bad("nothing after '@'")),
            None => match text.rsplit_once(':') {
                // A colon after the last slash starts a tag; one before it
                // is the registry's port.
                Some((path, tag)) if !tag.contains('/') => {
                    if !crate::version::is_tag(tag) {
                        return Err(bad(&format!("{tag:?} is not a valid tag")));
                    }
                    (path, VersionRequest::Tag(tag.to_string()))
                }
                _ => (text, VersionRequest::Latest),
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
        if Location::parse(path).is_none() {
            return Err(bad("the registry host is not name[:port]"));
        }
        if let VersionRequest::Version(v) = &version
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

/// The files a run reads: the XR to mirror and the function input.
pub struct MirrorRequest {
    /// The XR (or claim) of `--from-xr`.
    pub xr: Option<Json>,
    /// The function input of `--input`.
    pub input: Option<Input>,
    /// The `verify` of `--verify-with`'s input.
    pub verify: Option<Verify>,
}

impl MirrorRequest {
    /// Reads the XR file and the input file, when given.
    pub fn read(args: &MirrorArgs) -> Result<Self, Error> {
        if args.from_xr.is_none() && args.packages.is_empty() {
            return Err(Error::Usage(
                "name packages to mirror, or an XR with --from-xr".into(),
            ));
        }
        let xr = args
            .from_xr
            .as_deref()
            .map(load::yaml)
            .transpose()
            .map_err(Error::Input)?;
        let input = args
            .input
            .as_deref()
            .map(load::input_file)
            .transpose()
            .map_err(Error::Input)?;
        let verify = match args.verify_with.as_deref() {
            Some(path) => {
                let policy = load::input_file(path).map_err(Error::Input)?;
                Some(policy.verify.ok_or_else(|| {
                    Error::Usage(format!(
                        "--verify-with {}: the input has no verify.authorities",
                        path.display()
                    ))
                })?)
            }
            None => None,
        };
        Ok(Self { xr, input, verify })
    }

    /// The mirror table of the run.
    pub fn mirrors(&self, args: &MirrorArgs) -> Vec<Mirror> {
        mirrors(
            &args.mirror,
            self.input.as_ref(),
            args.repository_prefix.as_deref(),
        )
    }

    /// The function input the run resolves with: the input file's (or the
    /// defaults) with the run's mirror table.
    /// The input the closure is resolved with: `--input`'s, with the run's
    /// mirror table and `--verify-with`'s authorities (none without it).
    pub fn input(&self, mirrors: Vec<Mirror>) -> Input {
        Input {
            mirrors,
            verify: self.verify.clone(),
            ..self.input.clone().unwrap_or_default()
        }
    }

    /// What to mirror, as an XR's spec: the XR's, or the command line's
    /// packages.
    pub async fn spec(&self, args: &MirrorArgs, upstream: &Reader) -> Result<XrSpec, Error> {
        match &self.xr {
            Some(xr) => Ok(XrSpec::from_composite(xr)?),
            None => listed_spec(args, upstream).await,
        }
    }
}

/// The mirror table: `--mirror` entries, else the input file's, else the
/// default table with `--repository-prefix` in front of every repository.
fn mirrors(
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

/// The command line's packages as an XR spec: each mapped into ECR, its
/// version chosen and its kind read from its `package.yaml`.
async fn listed_spec(args: &MirrorArgs, upstream: &Reader) -> Result<XrSpec, Error> {
    let (Some(account_id), Some(region)) = (&args.account_id, &args.region) else {
        return Err(Error::Usage(
            "--account-id and --region are required without --from-xr".into(),
        ));
    };
    let mut packages = Vec::new();
    for text in &args.packages {
        let reference = PackageRef::parse(text)?;
        let repository = upstream
            .inner()
            .repository_for(&reference.path)
            .ok_or_else(|| {
                Error::Usage(format!(
                    "package {text:?} is under no mirror's upstream; add --mirror {}=PREFIX",
                    reference.path.split('/').next().unwrap_or_default()
                ))
            })?;
        upstream.inner().list(&repository, &reference.path);
        let version = top_version(upstream, &repository, &reference).await?;
        let digest = upstream.resolve_digest(&repository, &version).await?;
        let kind = upstream
            .package_meta(&repository, &digest)
            .await?
            .kind
            .ok_or_else(|| Error::Image {
                image: format!("{}@{digest}", reference.path),
                message: "its package.yaml is not a Provider, Function or Configuration".into(),
            })?;
        packages.push(json!({"kind": kind, "repository": repository, "version": version}));
    }
    composite_spec(account_id, region, packages)
}

/// The tag or digest a command-line reference names.
async fn top_version(
    upstream: &Reader,
    repository: &str,
    reference: &PackageRef,
) -> Result<String, Error> {
    let constraint = match &reference.version {
        VersionRequest::Version(v) if crate::names::is_digest(v) => return Ok(v.clone()),
        VersionRequest::Version(v) => Some(Constraint::parse(v)?),
        VersionRequest::Tag(_) | VersionRequest::Latest => None,
    };
    let tags = upstream.list_tags(repository).await?;
    let chosen = match (&reference.version, &constraint) {
        (VersionRequest::Tag(tag), _) => tags.iter().find(|t| *t == tag).map(String::as_str),
        (_, Some(c)) => select_highest(&[c], tags.iter().map(String::as_str)),
        // The highest release: Masterminds' >=0.0.0 admits no prerelease.
        _ => {
            let releases = Constraint::parse(">=0.0.0")?;
            select_highest(&[&releases], tags.iter().map(String::as_str))
        }
    };
    chosen.map(str::to_string).ok_or_else(|| {
        let wanted = match &reference.version {
            VersionRequest::Tag(tag) => format!("tag {tag}"),
            VersionRequest::Version(v) => format!("a tag satisfying {v:?}"),
            VersionRequest::Latest => "a release tag".to_string(),
        };
        Error::NoVersion {
            package: reference.path.clone(),
            wanted,
            tags: tags.len(),
        }
    })
}

/// An XR with the given registry and packages, validated as the function
/// validates an XR's spec.
fn composite_spec(account_id: &str, region: &str, packages: Vec<Json>) -> Result<XrSpec, Error> {
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
    use crate::mirror::args::parse_mirror;
    use proptest::prelude::*;

    #[test]
    fn package_references() {
        let ok: &[(&str, &str, VersionRequest)] = &[
            (
                "xpkg.upbound.io/upbound/provider-aws-s3",
                "xpkg.upbound.io/upbound/provider-aws-s3",
                VersionRequest::Latest,
            ),
            (
                "xpkg.upbound.io/upbound/provider-aws-s3:v1.2.0",
                "xpkg.upbound.io/upbound/provider-aws-s3",
                VersionRequest::Tag("v1.2.0".into()),
            ),
            (
                "127.0.0.1:5000/upbound/provider-family-aws",
                "127.0.0.1:5000/upbound/provider-family-aws",
                VersionRequest::Latest,
            ),
            (
                "127.0.0.1:5000/upbound/provider-family-aws:v2",
                "127.0.0.1:5000/upbound/provider-family-aws",
                VersionRequest::Tag("v2".into()),
            ),
            (
                "xpkg.upbound.io/upbound/provider-aws-s3@>=v1.0.0, <v2",
                "xpkg.upbound.io/upbound/provider-aws-s3",
                VersionRequest::Version(">=v1.0.0, <v2".into()),
            ),
            (
                "localhost/a/b@sha256:0000000000000000000000000000000000000000000000000000000000000000",
                "localhost/a/b",
                VersionRequest::Version(
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
