//! What copying did: the counts one image's copy reports, summed over the
//! images of a package.

/// What copying one image's content (or a package's images) did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Copied {
    pub bytes_uploaded: u64,
    pub blobs_uploaded: usize,
    pub blobs_mounted: usize,
    pub manifests_pushed: usize,
    /// Whether the image (every image, for a sum) was already complete in
    /// the target.
    pub present: bool,
}

impl Copied {
    /// The start of a sum over images: nothing done, nothing lacking.
    pub fn none() -> Self {
        Copied {
            present: true,
            ..Copied::default()
        }
    }

    /// Adds what copying one more image did.
    pub fn add(&mut self, image: &Copied) {
        self.bytes_uploaded += image.bytes_uploaded;
        self.blobs_uploaded += image.blobs_uploaded;
        self.blobs_mounted += image.blobs_mounted;
        self.manifests_pushed += image.manifests_pushed;
        self.present &= image.present;
    }
}
