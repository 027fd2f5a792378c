//! The XR `--emit-xr` writes: it installs the mirrored closure, every
//! package pinned to its digest, in install order.

use std::path::Path;

use serde_json::{Value as Json, json};

use super::error::Error;
use super::image::Package;
use crate::aws::RegistryRef;

/// The XR written when none was read.
const XR_API_VERSION: &str = "ecr.platform.example.org/v1alpha1";
const XR_KIND: &str = "XEcrPackages";

/// Writes the XR to `path`; the read XR's identity and other spec fields
/// are kept.
pub fn write(
    path: &Path,
    read: Option<&Json>,
    registry: &RegistryRef,
    packages: &[Package],
) -> Result<(), Error> {
    let field = |pointer: &str, default: &str| {
        read.and_then(|xr| xr.pointer(pointer))
            .and_then(Json::as_str)
            .unwrap_or(default)
            .to_string()
    };
    let listed: Vec<Json> = packages
        .iter()
        .map(|p| {
            json!({
                "kind": p.node.kind,
                "repository": p.node.repository,
                "version": p.node.digest,
            })
        })
        .collect();
    let mut spec = read
        .and_then(|xr| xr.get("spec"))
        .cloned()
        .unwrap_or_else(|| json!({}));
    spec["registry"] = json!({"accountId": registry.account_id, "region": registry.region});
    spec["packages"] = Json::Array(listed);
    let xr = json!({
        "apiVersion": field("/apiVersion", XR_API_VERSION),
        "kind": field("/kind", XR_KIND),
        "metadata": {"name": field("/metadata/name", "mirrored-packages")},
        "spec": spec,
    });
    let failed = |source: Box<dyn std::error::Error + Send + Sync>| Error::Write {
        path: path.display().to_string(),
        source,
    };
    let text = serde_norway::to_string(&xr).map_err(|e| failed(Box::new(e)))?;
    std::fs::write(path, text).map_err(|e| failed(Box::new(e)))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}
