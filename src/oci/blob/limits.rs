//! What one layer may cost: the bounds a [`LayerLimits`] holds, their defaults,
//! and the fixed bounds and names of the format.

/// Largest compressed layer read (and hashed), in bytes.
pub const MAX_COMPRESSED_BYTES: u64 = 256 * 1024 * 1024;
/// Largest amount of uncompressed tar data walked before the meta document is
/// found, in bytes.
pub const MAX_UNCOMPRESSED_BYTES: u64 = 1024 * 1024 * 1024;
/// Most tar headers (files, directories, long-name and pax records) walked.
pub const MAX_TAR_ENTRIES: usize = 10_000;
/// Largest meta document (the `meta.pkg.crossplane.io` YAML document), in bytes.
/// Real ones are a few kilobytes.
pub const MAX_META_DOCUMENT_BYTES: usize = 1024 * 1024;
/// Deepest nesting of mappings and sequences accepted in the meta document.
pub const MAX_YAML_DEPTH: usize = 32;
/// Longest file name taken from a GNU long-name entry or a pax `path` record.
pub(super) const MAX_NAME_BYTES: u64 = 4096;
/// Largest pax extended header read.
pub(super) const MAX_PAX_BYTES: u64 = 64 * 1024;
/// Bytes of a line kept while skipping a document: enough to see `---`.
pub(super) const SKIP_LINE_KEEP: usize = 64;

/// The file of an xpkg that holds the package's YAML stream.
pub const PACKAGE_FILE: &str = "package.yaml";
/// The apiVersion group of meta documents.
pub const META_GROUP: &str = "meta.pkg.crossplane.io/";

/// Bounds on what one layer may cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerLimits {
    pub max_compressed_bytes: u64,
    pub max_uncompressed_bytes: u64,
    pub max_tar_entries: usize,
    pub max_meta_document_bytes: usize,
    pub max_yaml_depth: usize,
}

impl Default for LayerLimits {
    fn default() -> Self {
        Self {
            max_compressed_bytes: MAX_COMPRESSED_BYTES,
            max_uncompressed_bytes: MAX_UNCOMPRESSED_BYTES,
            max_tar_entries: MAX_TAR_ENTRIES,
            max_meta_document_bytes: MAX_META_DOCUMENT_BYTES,
            max_yaml_depth: MAX_YAML_DEPTH,
        }
    }
}
