//! The OCI distribution reference grammar, as typed values: a
//! [`Repository`] name, a [`Tag`], a [`Digest`], and a [`Reference`] (a tag
//! or a digest). Every reference that comes from outside (an index's
//! `manifests[].digest`, a referrers answer, a signature tag, a `Link`
//! header, `package.yaml`, the command line) is parsed into one of these
//! before it is used, and URLs are built from these values only, so nothing
//! unchecked ever reaches a request path.
//!
//! The grammar (OCI distribution spec, "Pulling manifests"):
//! - a repository is path components `[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*`
//!   joined by `/`, at most 255 characters in all;
//! - a tag is `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`;
//! - a digest is `algorithm:hex`, `sha256` with 64 and `sha512` with 128
//!   lowercase hex digits (no other algorithm is accepted: we could not
//!   verify it).
//!
//! A [`Digest`] also verifies bytes as they stream ([`Verifier`]).

use std::fmt;

use sha2::{Digest as _, Sha256, Sha512};

/// Longest repository name (the distribution spec's bound).
pub const MAX_REPOSITORY: usize = 255;
/// Longest tag.
pub const MAX_TAG: usize = 128;
/// Longest value quoted back in an error.
const MAX_QUOTED: usize = 80;

/// A reference that does not follow the grammar, or bytes that do not hash
/// to their digest. `origin` says where the value came from ("child 2 of
/// index repo@sha256:…", "the Link header of …", "the command line").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("{origin}: {value} is not a repository name (lowercase path components joined by '/')")]
    Repository { origin: String, value: Quoted },
    #[error("{origin}: {value} is not a tag ([A-Za-z0-9_][A-Za-z0-9._-]{{0,127}})")]
    Tag { origin: String, value: Quoted },
    #[error("{origin}: {value} is not a digest (sha256:<64 hex> or sha512:<128 hex>)")]
    Digest { origin: String, value: Quoted },
    #[error("{origin}: {value} is neither a tag nor a digest")]
    Reference { origin: String, value: Quoted },
    #[error("{what} does not match its digest: expected {expected}, got {actual}")]
    Mismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("{what} is {actual} bytes, not the {expected} its descriptor says")]
    Size {
        what: String,
        expected: u64,
        actual: u64,
    },
}

impl Error {
    /// A value for a message of this module's kind built elsewhere.
    pub fn quoted(value: &str) -> Quoted {
        Quoted::new(value)
    }
}

/// A value quoted back in a message: escaped, and cut short.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quoted(String);

impl Quoted {
    fn new(value: &str) -> Self {
        let cut: String = value.chars().take(MAX_QUOTED).collect();
        let more = if cut.len() < value.len() { "…" } else { "" };
        Quoted(format!("{cut:?}{more}"))
    }
}

impl fmt::Display for Quoted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A digest algorithm we can verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

/// `algorithm:hex`, checked.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(String);

impl Digest {
    /// Parses a digest that came from `origin`.
    pub fn parse(value: &str, origin: impl fmt::Display) -> Result<Digest, Error> {
        Self::check(value).ok_or_else(|| Error::Digest {
            origin: origin.to_string(),
            value: Quoted::new(value),
        })
    }

    fn check(value: &str) -> Option<Digest> {
        let (algorithm, hex) = value.split_once(':')?;
        let algorithm = match algorithm {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            _ => return None,
        };
        (hex.len() == algorithm.hex_len()
            && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .then(|| Digest(value.to_string()))
    }

    /// Whether `value` is a well-formed digest.
    pub fn is_digest(value: &str) -> bool {
        Self::check(value).is_some()
    }

    /// The sha256 digest of `bytes`.
    pub fn sha256(bytes: &[u8]) -> Digest {
        Digest(format!("sha256:{}", hex(&Sha256::digest(bytes))))
    }

    pub fn algorithm(&self) -> Algorithm {
        if self.0.starts_with("sha512:") {
            Algorithm::Sha512
        } else {
            Algorithm::Sha256
        }
    }

    /// The hex part.
    pub fn hex(&self) -> &str {
        &self.0[self.algorithm().name().len() + 1..]
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A verifier for bytes that should hash to this digest.
    pub fn verifier(&self) -> Verifier {
        Verifier {
            expected: self.clone(),
            hasher: match self.algorithm() {
                Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
                Algorithm::Sha512 => Hasher::Sha512(Box::new(Sha512::new())),
            },
            len: 0,
        }
    }

    /// Checks that `bytes`, named `what` in an error, hash to this digest.
    pub fn verify(&self, bytes: &[u8], what: impl fmt::Display) -> Result<(), Error> {
        let mut v = self.verifier();
        v.update(bytes);
        v.finish(what)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

enum Hasher {
    Sha256(Sha256),
    Sha512(Box<Sha512>),
}

/// Hashes bytes as they stream, chunk by chunk, and says at the end whether
/// they were what their digest names.
pub struct Verifier {
    expected: Digest,
    hasher: Hasher,
    len: u64,
}

impl Verifier {
    pub fn update(&mut self, chunk: &[u8]) {
        self.len += chunk.len() as u64;
        match &mut self.hasher {
            Hasher::Sha256(h) => h.update(chunk),
            Hasher::Sha512(h) => h.update(chunk),
        }
    }

    /// Bytes seen so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The digest of what was fed.
    pub fn actual(self) -> Digest {
        let (name, hex) = match self.hasher {
            Hasher::Sha256(h) => ("sha256", hex(&h.finalize())),
            Hasher::Sha512(h) => ("sha512", hex(&h.finalize())),
        };
        Digest(format!("{name}:{hex}"))
    }

    /// `Ok` when what was fed hashes to the expected digest.
    pub fn finish(self, what: impl fmt::Display) -> Result<(), Error> {
        let expected = self.expected.clone();
        let actual = self.actual();
        if actual == expected {
            Ok(())
        } else {
            Err(Error::Mismatch {
                what: what.to_string(),
                expected,
                actual,
            })
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A tag, checked.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tag(String);

impl Tag {
    pub fn parse(value: &str, origin: impl fmt::Display) -> Result<Tag, Error> {
        Self::check(value).ok_or_else(|| Error::Tag {
            origin: origin.to_string(),
            value: Quoted::new(value),
        })
    }

    fn check(value: &str) -> Option<Tag> {
        let mut bytes = value.bytes();
        let first = bytes.next()?;
        (value.len() <= MAX_TAG
            && (first.is_ascii_alphanumeric() || first == b'_')
            && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')))
        .then(|| Tag(value.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A repository name, checked.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Repository(String);

impl Repository {
    pub fn parse(value: &str, origin: impl fmt::Display) -> Result<Repository, Error> {
        (value.len() <= MAX_REPOSITORY && value.split('/').all(component))
            .then(|| Repository(value.to_string()))
            .ok_or_else(|| Error::Repository {
                origin: origin.to_string(),
                value: Quoted::new(value),
            })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*`
fn component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: `.`, `_`, `__`, or any number of `-`.
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// A tag or a digest: what follows `/manifests/` in a URL.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reference {
    Tag(Tag),
    Digest(Digest),
}

impl Reference {
    /// A digest when it has a `:`, else a tag; anything else is an error.
    pub fn parse(value: &str, origin: impl fmt::Display) -> Result<Reference, Error> {
        if value.contains(':') {
            Digest::check(value).map(Reference::Digest)
        } else {
            Tag::check(value).map(Reference::Tag)
        }
        .ok_or_else(|| Error::Reference {
            origin: origin.to_string(),
            value: Quoted::new(value),
        })
    }

    pub fn digest(&self) -> Option<&Digest> {
        match self {
            Reference::Digest(d) => Some(d),
            Reference::Tag(_) => None,
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Reference::Tag(t) => t.as_str(),
            Reference::Digest(d) => d.as_str(),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The path of a distribution API request, built from checked parts only.
pub fn manifest_path(repository: &Repository, reference: &Reference) -> String {
    format!("/v2/{repository}/manifests/{reference}")
}

pub fn blob_path(repository: &Repository, digest: &Digest) -> String {
    format!("/v2/{repository}/blobs/{digest}")
}

pub fn referrers_path(repository: &Repository, digest: &Digest) -> String {
    format!("/v2/{repository}/referrers/{digest}")
}

pub fn tags_path(repository: &Repository) -> String {
    format!("/v2/{repository}/tags/list")
}

pub fn uploads_path(repository: &Repository) -> String {
    format!("/v2/{repository}/blobs/uploads/")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA256: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn digests() {
        assert!(Digest::parse(SHA256, "t").is_ok());
        let sha512 = format!("sha512:{}", "a".repeat(128));
        assert_eq!(
            Digest::parse(&sha512, "t").expect("sha512").algorithm(),
            Algorithm::Sha512
        );
        for bad in [
            "",
            "sha256:",
            "sha256:abc",
            &SHA256.to_uppercase(),
            &format!("{SHA256}0"),
            &format!("sha512:{}", "a".repeat(64)),
            &format!("md5:{}", "a".repeat(32)),
            "../../../other/repo/manifests/v9.9.9",
            "v9.9.9",
            &format!("{SHA256}/.."),
        ] {
            let e = Digest::parse(bad, "child 0 of index x").expect_err(bad);
            assert!(e.to_string().starts_with("child 0 of index x: "), "{e}");
        }
    }

    #[test]
    fn tags() {
        for good in ["v1.0.0", "latest", "_x", "sha256-abc.sig", &"a".repeat(128)] {
            assert!(Tag::parse(good, "t").is_ok(), "{good}");
        }
        for bad in [
            "",
            ".x",
            "-x",
            "a/b",
            "a:b",
            "a b",
            "..",
            &"a".repeat(129),
            "ü",
        ] {
            assert!(Tag::parse(bad, "t").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn repositories() {
        for good in [
            "a",
            "a/b",
            "a.b/c_d/e__f/g---h",
            "upbound/provider-aws-s3",
            "0",
        ] {
            assert!(Repository::parse(good, "t").is_ok(), "{good}");
        }
        for bad in [
            "", "/a", "a/", "a//b", "A", "a/../b", "..", "a/.", "a..b", "a___b", "a._b", "-a",
            "a-", "a?b", "a#b", "a b", "a%2fb",
        ] {
            assert!(Repository::parse(bad, "t").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn references() {
        assert!(matches!(Reference::parse("v1", "t"), Ok(Reference::Tag(_))));
        assert!(matches!(
            Reference::parse(SHA256, "t"),
            Ok(Reference::Digest(_))
        ));
        // A tag posing as a digest, a digest with a made-up algorithm.
        assert!(Reference::parse("sha256:v9.9.9", "t").is_err());
        assert!(Reference::parse("sha1:abc", "t").is_err());
    }

    #[test]
    fn verification() {
        let d = Digest::parse(SHA256, "t").expect("digest");
        assert!(d.verify(b"", "the empty blob").is_ok());
        let e = d.verify(b"x", "blob b of image i").expect_err("mismatch");
        assert!(
            e.to_string()
                .starts_with("blob b of image i does not match its digest"),
            "{e}"
        );
        let bytes = b"hello world";
        let sha512 = Digest(format!("sha512:{}", hex(&Sha512::digest(bytes))));
        let mut v = sha512.verifier();
        v.update(b"hello ");
        v.update(b"world");
        assert!(v.finish("x").is_ok());
        assert!(sha512.verify(b"hello", "x").is_err());
        assert_eq!(Digest::sha256(b"").as_str(), SHA256);
    }

    #[test]
    fn quoted_values_are_cut_short() {
        let e = Tag::parse(&"x".repeat(1000), "t").expect_err("too long");
        assert!(e.to_string().len() < 200, "{e}");
    }
}
