//! What a registry found beside one image digest, each piece already
//! checked against the digest it was fetched by and bounded in size.

/// One layer of a legacy `sha256-<hex>.sig` manifest: the simple-signing
/// payload and its signature annotation (base64 DER) and, when keyless,
/// its certificate, chain and Rekor bundle annotations (each bounded by
/// `oci::signatures`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LegacySignature {
    pub payload: Vec<u8>,
    pub signature: String,
    /// `dev.sigstore.cosign/certificate`: the signing certificate (PEM).
    pub certificate: Option<String>,
    /// `dev.sigstore.cosign/chain`: its intermediates (PEM).
    pub chain: Option<String>,
    /// `dev.sigstore.cosign/bundle`: the Rekor entry (JSON).
    pub rekor: Option<String>,
}

/// Every signature found for one image, at most
/// [`MAX_SIGNATURES`](crate::spec::limits::MAX_SIGNATURES) in all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Signatures {
    /// From the legacy `.sig` tag.
    pub legacy: Vec<LegacySignature>,
    /// Sigstore bundles among the image's referrers, as bytes.
    pub bundles: Vec<Vec<u8>>,
    /// What was found but could not be read, and why (a manifest that is
    /// not one, a blob too large or not matching its digest).
    pub unreadable: Vec<String>,
}

impl Signatures {
    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.legacy.is_empty() && self.bundles.is_empty() && self.unreadable.is_empty()
    }

    /// Approximate bytes held, for a cache's budget.
    pub fn weight(&self) -> usize {
        let legacy: usize = self
            .legacy
            .iter()
            .map(|s| {
                let annotations = [&s.certificate, &s.chain, &s.rekor]
                    .iter()
                    .map(|a| a.as_ref().map_or(0, String::len))
                    .sum::<usize>();
                s.payload.len() + s.signature.len() + annotations + 96
            })
            .sum();
        let bundles: usize = self.bundles.iter().map(|b| b.len() + 24).sum();
        let unreadable: usize = self.unreadable.iter().map(|u| u.len() + 24).sum();
        legacy + bundles + unreadable + 48
    }
}
