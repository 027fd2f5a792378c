//! What a resolution gives: the install graph, and the installed
//! dependencies it keeps as they are.

use std::collections::BTreeMap;

use super::graph::Graph;
use super::scan::Skipped;
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
    /// By package name: the higher versions the supply-chain gate skipped.
    pub skipped: BTreeMap<String, Vec<Skipped>>,
    /// Packages no version of which passes the supply-chain gate, none
    /// installed: not composed, their dependents waiting.
    pub blocked: Vec<Blocked>,
}

/// A package no version of which passes the supply-chain gate.
#[derive(Debug)]
pub struct Blocked {
    pub name: String,
    /// The gate's [`Error::SupplyChain`], naming each version skipped.
    pub reason: Error,
    /// Names of the packages waiting for it.
    pub dependents: Vec<String>,
}

impl std::fmt::Display for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is not installed: {}", self.name, self.reason)?;
        if !self.dependents.is_empty() {
            write!(f, "; waiting for it: {}", self.dependents.join(", "))?;
        }
        Ok(())
    }
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
        let what = match self.reason {
            Error::SupplyChain { .. } => "package",
            _ => "dependency",
        };
        write!(
            f,
            "keeping installed {what} {} at {}: {}",
            self.name, self.version, self.reason
        )
    }
}
