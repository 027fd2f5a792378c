//! The install graph: which packages, what each depends on, and the order
//! Crossplane must install them in.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{DependencyError, Result};
use crate::names::is_label;
use crate::package::PackageKind;

/// One package to install, fully resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackageNode {
    /// ECR repository name; the node's identity.
    pub repository: String,
    pub kind: PackageKind,
    /// Upstream package path without tag, e.g. `xpkg.upbound.io/upbound/provider-family-aws`.
    pub upstream: String,
    /// `metadata.name` of the package object.
    pub name: String,
    /// The resolved tag, or the digest when the package is pinned by digest.
    pub version: String,
    pub digest: String,
    /// Repositories this package depends on.
    pub depends_on: BTreeSet<String>,
    pub runtime_config_name: Option<String>,
}

/// A validated install graph: unique names, no cycles. The install order is
/// worked out once, here, since every consumer needs it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Graph {
    nodes: BTreeMap<String, PackageNode>,
    /// Repositories, dependencies before dependents.
    order: Vec<String>,
}

impl Graph {
    pub fn new(nodes: impl IntoIterator<Item = PackageNode>) -> Result<Self> {
        let mut graph = Self {
            nodes: nodes
                .into_iter()
                .map(|n| (n.repository.clone(), n))
                .collect(),
            order: Vec::new(),
        };
        graph.check_names()?;
        graph.order = graph.sort()?;
        Ok(graph)
    }

    /// Every package, by repository.
    pub fn nodes(&self) -> impl Iterator<Item = &PackageNode> {
        self.nodes.values()
    }

    /// Dependencies before dependents; among packages whose dependencies are
    /// all placed, by name, so the order is stable across calls.
    pub fn install_order(&self) -> Vec<&PackageNode> {
        self.order
            .iter()
            .filter_map(|r| self.nodes.get(r))
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn get(&self, repository: &str) -> Option<&PackageNode> {
        self.nodes.get(repository)
    }

    fn sort(&self) -> Result<Vec<String>> {
        let mut placed: BTreeSet<&str> = BTreeSet::new();
        let mut order = Vec::with_capacity(self.nodes.len());
        while order.len() < self.nodes.len() {
            let mut ready: Vec<&PackageNode> = self
                .nodes
                .values()
                .filter(|n| !placed.contains(n.repository.as_str()))
                .filter(|n| {
                    n.depends_on
                        .iter()
                        .all(|d| placed.contains(d.as_str()) || !self.nodes.contains_key(d))
                })
                .collect();
            if ready.is_empty() {
                return Err(DependencyError::Cycle {
                    cycle: self.describe_cycle(&placed),
                }
                .into());
            }
            ready.sort_by(|a, b| a.name.cmp(&b.name));
            for node in ready {
                placed.insert(&node.repository);
                order.push(node.repository.clone());
            }
        }
        Ok(order)
    }

    /// Names one cycle among the packages that could not be placed.
    fn describe_cycle(&self, placed: &BTreeSet<&str>) -> Vec<String> {
        let stuck: BTreeSet<&str> = self
            .nodes
            .keys()
            .map(String::as_str)
            .filter(|r| !placed.contains(r))
            .collect();
        // Every stuck node has a stuck dependency, so walking stuck
        // dependencies from any stuck node must revisit one: that is a cycle.
        let mut path: Vec<&str> = Vec::new();
        let mut current = stuck.iter().next().copied();
        while let Some(repo) = current {
            if let Some(start) = path.iter().position(|r| *r == repo) {
                return path[start..]
                    .iter()
                    .chain(std::iter::once(&repo))
                    .map(|r| self.describe(r))
                    .collect();
            }
            path.push(repo);
            current = self.nodes.get(repo).and_then(|n| {
                n.depends_on
                    .iter()
                    .map(String::as_str)
                    .find(|d| stuck.contains(d))
            });
        }
        stuck.iter().map(|r| self.describe(r)).collect()
    }

    fn describe(&self, repository: &str) -> String {
        match self.nodes.get(repository) {
            Some(n) => format!("{} ({})", n.repository, n.version),
            None => repository.to_string(),
        }
    }

    /// Every package object needs a DNS-label name, and two repositories
    /// that map to one `metadata.name` would fight over one object; refuse
    /// rather than let the last one win.
    fn check_names(&self) -> Result<()> {
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        for node in self.nodes.values() {
            if !is_label(&node.name) {
                return Err(DependencyError::NotAName {
                    repository: node.repository.clone(),
                    name: node.name.chars().take(80).collect(),
                }
                .into());
            }
            if let Some(other) = seen.insert(&node.name, &node.repository) {
                return Err(DependencyError::SameName {
                    first: other.to_string(),
                    second: node.repository.clone(),
                    name: node.name.clone(),
                }
                .into());
            }
        }
        Ok(())
    }
}

/// The name Crossplane's package manager gives a dependency it installs
/// (`xpkg.ToDNSLabel` of the repository path, in crossplane/crossplane
/// `internal/xpkg/name.go`): lowercase letters and digits kept, `.`, `/`,
/// `:` and `-` turned into `-` except at the very start, end or 63rd byte,
/// reading stops at byte 62, dashes trimmed. Using the same name means
/// Crossplane's own resolver finds our package instead of installing a
/// duplicate, so this must stay byte-identical to Crossplane's, quirks
/// included: Go's `for i := range s` visits the byte offsets where
/// characters start, so a multi-byte character can step over offset 62 and
/// the result can then exceed 63 bytes. Such a name is not a DNS label and
/// [`Graph::new`] refuses it; names for anything else come from
/// [`crate::names::object_name`].
pub fn dns_label(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(bytes.len().min(63));
    for (i, _) in path.char_indices() {
        let b = bytes[i];
        if b.is_ascii_lowercase() || b.is_ascii_digit() {
            out.push(char::from(b));
        }
        if matches!(b, b'.' | b'/' | b':' | b'-') && i != 0 && i != 62 && i != bytes.len() - 1 {
            out.push('-');
        }
        if i == 62 {
            break;
        }
    }
    out.trim_matches('-').to_string()
}

/// The repository part of an upstream path: everything after the registry
/// host, as go-containerregistry's `RepositoryStr` gives it.
pub fn repository_path(upstream: &str) -> &str {
    match upstream.split_once('/') {
        Some((host, rest)) if host.contains('.') || host.contains(':') || host == "localhost" => {
            rest
        }
        _ => upstream,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(repo: &str, deps: &[&str]) -> PackageNode {
        PackageNode {
            repository: repo.to_string(),
            kind: PackageKind::Provider,
            upstream: format!("xpkg.upbound.io/{repo}"),
            name: dns_label(repo),
            version: "v1.0.0".to_string(),
            digest: String::new(),
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            runtime_config_name: None,
        }
    }

    /// Expected values from Crossplane's `xpkg.ToDNSLabel` (v2.2,
    /// `internal/xpkg/name.go`), run with Go 1.26.
    #[test]
    fn dns_labels_match_crossplane() {
        let a64 = "a".repeat(64);
        let a63 = "a".repeat(63);
        let a62 = "a".repeat(62);
        let a61 = "a".repeat(61);
        let tail = "b".repeat(20);
        let cases: Vec<(String, String)> = [
            ("upbound/provider-family-aws", "upbound-provider-family-aws"),
            ("upbound/provider-aws-s3", "upbound-provider-aws-s3"),
            (
                "crossplane-contrib/function-patch-and-transform",
                "crossplane-contrib-function-patch-and-transform",
            ),
            ("Upbound/Provider", "pbound-rovider"),
            ("/leading/slash/", "leading-slash"),
            ("a.b:c_d", "a-b-cd"),
            (
                "crossplane-contrib/provider-upjet-aws-with-a-very-long-name-that-goes-past-the-limit",
                "crossplane-contrib-provider-upjet-aws-with-a-very-long-name-tha",
            ),
            ("", ""),
            ("é/provider-aws", "provider-aws"),
            ("a//b", "a--b"),
            ("a-", "a"),
            ("-", ""),
            ("a/-/b", "a---b"),
            ("mirror/upbound/provider_x.y", "mirror-upbound-providerx-y"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .chain([
            (format!("{a64}/b"), a63.clone()),
            (format!("{a62}/bc"), a62.clone()),
            (format!("{a61}/bcd"), format!("{a61}-b")),
            // A two-byte character over offset 62: Go reads on.
            (format!("{a61}é{tail}"), format!("{a61}{tail}")),
        ])
        .collect();
        for (path, label) in cases {
            assert_eq!(dns_label(&path), label, "{path}");
        }
    }

    #[test]
    fn names_that_are_not_labels_are_refused() {
        for name in [String::new(), "x".repeat(81), "Not_A_Label".to_string()] {
            let mut a = node("x/a", &[]);
            a.name = name.clone();
            let err = Graph::new([a]).unwrap_err();
            assert!(
                err.to_string().contains("not a Kubernetes name"),
                "{name}: {err}"
            );
            assert!(err.to_string().contains("spec.packages[].name"), "{err}");
        }
    }

    #[test]
    fn repository_paths_drop_the_host() {
        assert_eq!(
            repository_path("xpkg.upbound.io/upbound/provider-family-aws"),
            "upbound/provider-family-aws"
        );
        assert_eq!(repository_path("localhost:5000/a/b"), "a/b");
        assert_eq!(
            repository_path("upbound/provider-family-aws"),
            "upbound/provider-family-aws"
        );
    }

    #[test]
    fn installs_dependencies_first() {
        let graph = Graph::new([
            node("c/config", &["b/provider-s3", "a/function"]),
            node("b/provider-s3", &["b/family"]),
            node("b/family", &[]),
            node("a/function", &[]),
        ])
        .expect("acyclic");
        let order: Vec<&str> = graph
            .install_order()
            .iter()
            .map(|n| n.repository.as_str())
            .collect();
        assert_eq!(
            order,
            ["a/function", "b/family", "b/provider-s3", "c/config"]
        );
    }

    #[test]
    fn cycles_are_named() {
        let err = Graph::new([
            node("x/a", &["x/b"]),
            node("x/b", &["x/c"]),
            node("x/c", &["x/a"]),
            node("x/d", &[]),
        ])
        .unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with("dependency cycle: "), "{message}");
        for repo in ["x/a (v1.0.0)", "x/b (v1.0.0)", "x/c (v1.0.0)"] {
            assert!(message.contains(repo), "{message}");
        }
        assert!(!message.contains("x/d"), "{message}");
        let err = Graph::new([node("x/self", &["x/self"])]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "dependency cycle: x/self (v1.0.0) -> x/self (v1.0.0)"
        );
    }

    #[test]
    fn name_clashes_are_refused() {
        let mut a = node("x/a", &[]);
        let b = node("x/b", &[]);
        a.name = b.name.clone();
        let err = Graph::new([a, b]).unwrap_err();
        assert!(err.to_string().contains("would both be named"), "{err}");
    }
}
