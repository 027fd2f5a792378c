//! The OCI wire plumbing shared by the ECR registry and `mirror`: the
//! distribution API client and its auth (`distribution`), reading a
//! Crossplane package out of an image (`xpkg`), and streaming a layer's
//! bytes through its digest check to `package.yaml` (`blob`).

pub mod blob;
pub mod distribution;
pub mod xpkg;
