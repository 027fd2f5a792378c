//! What a resolution gives: the install graph, and the installed
//! dependencies it keeps as they are.

use std::collections::BTreeMap;

use super::graph::Graph;
use crate::error::Error;

/// The outcome of a resolution: the install graph, and the installed
/// dependencies it keeps at their last known version because they no
/// longer resolve.
#[derive(Debug, Default)]
pub struct Resolution {
    pub graph: Graph,
    pub kept: Vec<Kept>,
    /// By package name: the highest release of its repository, where the
    /// constraints keep it from that release.
    pub available: BTreeMap<String, String>,
    /// Constraints the Crossplane v2 dialects read differently over the
    /// tags present (only when the input does not say which Crossplane).
    pub warnings: Vec<String>,
}

/// An installed dependency kept at its last known version.
#[derive(Debug)]
pub struct Kept {
    pub name: String,
    pub version: String,
    /// Why it no longer resolves.
    pub reason: Error,
}

impl std::fmt::Display for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "keeping installed dependency {} at {}: {}",
            self.name, self.version, self.reason
        )
    }
}
