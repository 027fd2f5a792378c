//! The install graph: which packages, what each depends on, and the order
//! Crossplane must install them in.

use std::collections::{BTreeMap, BTreeSet};

// Hashed per call over long repository names: foldhash, not SipHash.
use foldhash::HashMap;

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

    /// In waves: each wave is every package whose dependencies inside the
    /// graph were all placed by the waves before it, by name. A count of
    /// unplaced dependencies per package finds the next wave among the
    /// dependents of the last one, instead of scanning every package per
    /// wave.
    fn sort(&self) -> Result<Vec<String>> {
        let mut unplaced: HashMap<&str, usize> =
            HashMap::with_capacity_and_hasher(self.nodes.len(), Default::default());
        let mut dependents: HashMap<&str, Vec<&PackageNode>> = HashMap::default();
        let mut ready: Vec<&PackageNode> = Vec::new();
        for node in self.nodes.values() {
            let inside = node
                .depends_on
                .iter()
                .filter(|d| self.nodes.contains_key(*d));
            let mut count = 0;
            for dependency in inside {
                dependents.entry(dependency).or_default().push(node);
                count += 1;
            }
            unplaced.insert(&node.repository, count);
            if count == 0 {
                ready.push(node);
            }
        }
        let mut order = Vec::with_capacity(self.nodes.len());
        while order.len() < self.nodes.len() {
            if ready.is_empty() {
                let placed: BTreeSet<&str> = order.iter().map(String::as_str).collect();
                return Err(DependencyError::Cycle {
                    cycle: self.describe_cycle(&placed),
                }
                .into());
            }
            ready.sort_by(|a, b| a.name.cmp(&b.name));
            let mut next: Vec<&PackageNode> = Vec::new();
            for node in ready {
                order.push(node.repository.clone());
                for dependent in dependents
                    .get(node.repository.as_str())
                    .into_iter()
                    .flatten()
                {
                    if let Some(count) = unplaced.get_mut(dependent.repository.as_str()) {
                        *count -= 1;
                        if *count == 0 {
                            next.push(dependent);
                        }
                    }
                }
            }
            // By repository, as the nodes are kept, before sorting by name.
            next.sort_by(|a, b| a.repository.cmp(&b.repository));
            ready = next;
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
        let mut seen: HashMap<&str, &str> =
            HashMap::with_capacity_and_hasher(self.nodes.len(), Default::default());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn node(repo: &str, deps: &[&str]) -> PackageNode {
        PackageNode {
            repository: repo.to_string(),
            kind: PackageKind::Provider,
            upstream: format!("xpkg.upbound.io/{repo}"),
            name: crate::names::dns_label(repo),
            version: "v1.0.0".to_string(),
            digest: String::new(),
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            runtime_config_name: None,
        }
    }

    /// Expected values from Crossplane's `xpkg.ToDNSLabel` (v2.2,
    /// `internal/xpkg/name.go`), run with Go 1.26.

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

    /// The order as first written: every wave found by scanning every
    /// package, for the waves above to be checked against.
    fn scanned_order(graph: &Graph) -> Option<Vec<String>> {
        let mut placed: BTreeSet<&str> = BTreeSet::new();
        let mut order = Vec::new();
        while order.len() < graph.nodes.len() {
            let mut ready: Vec<&PackageNode> = graph
                .nodes
                .values()
                .filter(|n| !placed.contains(n.repository.as_str()))
                .filter(|n| {
                    n.depends_on
                        .iter()
                        .all(|d| placed.contains(d.as_str()) || !graph.nodes.contains_key(d))
                })
                .collect();
            if ready.is_empty() {
                return None;
            }
            ready.sort_by(|a, b| a.name.cmp(&b.name));
            for node in ready {
                placed.insert(&node.repository);
                order.push(node.repository.clone());
            }
        }
        Some(order)
    }

    #[test]
    fn waves_order_as_a_scan_of_every_package_does() {
        // Deterministic pseudo-random graphs: dependencies on lower
        // numbers only (acyclic) or on any (cyclic at times), some outside
        // the graph, names not in repository order.
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |bound: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % bound
        };
        for case in 0..200 {
            let size = 1 + next(40);
            let acyclic = case % 4 != 0;
            let nodes: Vec<PackageNode> = (0..size)
                .map(|i| {
                    let deps: Vec<String> = (0..next(4))
                        .filter_map(|_| {
                            let bound = if acyclic { i } else { size + 2 };
                            (bound > 0).then(|| format!("x/p{}", next(bound)))
                        })
                        .collect();
                    let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
                    let mut n = node(&format!("x/p{i}"), &deps);
                    n.name = format!("n{}-{i}", next(1000));
                    n
                })
                .collect();
            let graph = Graph::new(nodes.clone());
            let unsorted = Graph {
                nodes: nodes
                    .into_iter()
                    .map(|n| (n.repository.clone(), n))
                    .collect(),
                order: Vec::new(),
            };
            match (graph, scanned_order(&unsorted)) {
                (Ok(graph), Some(order)) => assert_eq!(graph.order, order, "case {case}"),
                (Err(e), None) => assert!(e.to_string().starts_with("dependency cycle")),
                (graph, order) => panic!("case {case}: {graph:?} against {order:?}"),
            }
        }
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
