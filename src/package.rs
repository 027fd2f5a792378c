//! What a Crossplane package is to the resolver: its kind, and the
//! dependencies its `package.yaml` declares. A leaf every other module may
//! use.

use serde::{Deserialize, Serialize};

/// The kinds of Crossplane package.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PackageKind {
    Provider,
    Function,
    Configuration,
}

impl PackageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PackageKind::Provider => "Provider",
            PackageKind::Function => "Function",
            PackageKind::Configuration => "Configuration",
        }
    }
}

impl std::fmt::Display for PackageKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for PackageKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "Provider" => Ok(PackageKind::Provider),
            "Function" => Ok(PackageKind::Function),
            "Configuration" => Ok(PackageKind::Configuration),
            other => Err(format!(
                "unknown package kind {other:?}; expected Provider, Function or Configuration"
            )),
        }
    }
}

/// One `spec.dependsOn[]` entry of a package's `package.yaml`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Dependency {
    /// Upstream package path without tag, e.g. `xpkg.upbound.io/upbound/provider-family-aws`.
    pub package: String,
    pub kind: PackageKind,
    /// A Masterminds constraint or a `sha256:` digest, as written.
    pub version: String,
}

/// The parts of a package's `meta.pkg.crossplane.io` document the resolver uses.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PackageMeta {
    /// `kind` of the meta document, when it is one we know.
    pub kind: Option<PackageKind>,
    /// `metadata.name` of the meta document.
    pub name: String,
    pub depends_on: Vec<Dependency>,
}
