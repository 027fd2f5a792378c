//! The OCI wire plumbing shared by the ECR registry and `mirror`: the
//! distribution API client and its auth (`distribution`), reading a
//! Crossplane package out of an image (`xpkg`), streaming a layer's
//! bytes through its digest check to `package.yaml` (`blob`), and reading
//! the cosign signatures stored beside an image (`signatures`).

pub mod blob;
pub mod distribution;
pub mod signatures;
pub mod xpkg;
