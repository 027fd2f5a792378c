//! Streaming extraction of a package's meta document from an xpkg layer.
//!
//! A [`LayerReader`] is fed the layer blob chunk by chunk, as it arrives from
//! the network. Every compressed byte is hashed (the digest is checked once the
//! whole blob has been read); the bytes are gunzipped on the fly, the tar
//! stream is walked header by header, and `package.yaml` is split into YAML
//! documents as it streams. Only the first document whose `apiVersion` is
//! `meta.pkg.crossplane.io/*` is kept and parsed; everything else (megabytes of
//! CRDs, other files) is skipped without being held. Once that document is
//! found, decompression stops and the rest of the blob is only hashed.
//!
//! A hostile or broken layer ends in a clear error message (the caller turns it
//! into `Error::InvalidPackage`), never in unbounded memory or a panic. The
//! bounds are in [`LayerLimits`]; the defaults are the `MAX_*` constants.

use std::io::Write;

use flate2::write::GzDecoder;
use sha2::{Digest as _, Sha256};

use crate::package::PackageMeta;
use crate::reference::{self, Verifier};

mod invalid;
mod limits;
mod meta;
mod tar;

pub use invalid::Invalid;
use invalid::{Res, invalid};
pub use limits::{
    LayerLimits, MAX_COMPRESSED_BYTES, MAX_META_DOCUMENT_BYTES, MAX_TAR_ENTRIES,
    MAX_UNCOMPRESSED_BYTES, MAX_YAML_DEPTH, META_GROUP, PACKAGE_FILE,
};
use tar::TarSink;

/// How a layer is compressed, from its descriptor's media type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    /// A plain tar.
    None,
    /// Unknown media type: decide from the first bytes.
    Sniff,
}

impl Compression {
    /// The compression a layer media type announces; `Err` for ones this
    /// reader cannot read (zstd, foreign layers).
    pub fn from_media_type(media_type: &str) -> Result<Self, String> {
        let mt = media_type.trim();
        if mt.contains("zstd") {
            return Err(format!("layer media type {mt:?} (zstd) is not supported"));
        }
        if mt.ends_with("+gzip") || mt.ends_with(".tar.gzip") {
            Ok(Compression::Gzip)
        } else if mt.ends_with(".tar") || mt.ends_with(".rootfs.diff.tar") {
            Ok(Compression::None)
        } else {
            Ok(Compression::Sniff)
        }
    }
}

/// Reads one layer blob, fed in chunks.
pub struct LayerReader {
    verifier: Verifier,
    compressed: u64,
    limits: LayerLimits,
    stage: Stage,
}

enum Stage {
    /// Waiting for the first bytes to decide gzip or plain tar.
    Sniff(Vec<u8>, Compression),
    Gzip(Box<GzDecoder<TarSink>>),
    Plain(Box<TarSink>),
    /// Parsing finished (found or not); the rest is only hashed.
    Done(Option<PackageMeta>),
}

impl LayerReader {
    /// A reader for the blob named `digest` (`sha256:<hex>` or
    /// `sha512:<hex>`), verified as it streams.
    pub fn new(digest: &str, compression: Compression, limits: LayerLimits) -> Res<Self> {
        let digest = reference::Digest::parse(digest, "the layer digest")
            .map_err(|e| Invalid(e.to_string()))?;
        Ok(Self {
            verifier: digest.verifier(),
            compressed: 0,
            limits,
            stage: Stage::Sniff(Vec::new(), compression),
        })
    }

    /// Whether the package content is settled and the rest is only hashed.
    pub fn parsing_done(&self) -> bool {
        matches!(self.stage, Stage::Done(_))
    }

    /// Bytes fed so far (the tests check where parsing stopped).
    #[cfg(test)]
    pub fn compressed_bytes(&self) -> u64 {
        self.compressed
    }

    /// Feeds the next chunk of the blob.
    pub fn feed(&mut self, chunk: &[u8]) -> Res<()> {
        self.compressed += chunk.len() as u64;
        if self.compressed > self.limits.max_compressed_bytes {
            return invalid(format!(
                "layer is larger than {} bytes compressed",
                self.limits.max_compressed_bytes
            ));
        }
        self.verifier.update(chunk);
        self.parse(chunk)
    }

    fn parse(&mut self, chunk: &[u8]) -> Res<()> {
        if let Stage::Sniff(buf, compression) = &mut self.stage {
            buf.extend_from_slice(chunk);
            if buf.len() < 4 {
                return Ok(());
            }
            let buf = std::mem::take(buf);
            let compression = *compression;
            self.start(&buf, compression)?;
            return Ok(());
        }
        let next = match &mut self.stage {
            Stage::Gzip(decoder) => {
                let written = decoder.write_all(chunk).and_then(|()| decoder.flush());
                if written.is_err() && decoder.get_ref().error.is_none() {
                    // What the decoder inflated before the corrupt point is
                    // still held in its buffer: hand it to the tar walk, so
                    // the error named does not depend on where chunks fall.
                    let _ = decoder.flush();
                }
                let sink = decoder.get_mut();
                if let Some(e) = sink.error.take() {
                    return Err(e);
                }
                if sink.settled() {
                    Some(sink.outcome())
                } else if let Err(e) = written {
                    return invalid(format!("layer is not valid gzip: {e}"));
                } else {
                    None
                }
            }
            Stage::Plain(sink) => {
                sink.push(chunk)?;
                sink.settled().then(|| sink.outcome())
            }
            Stage::Sniff(..) | Stage::Done(_) => None,
        };
        if let Some(outcome) = next {
            self.stage = Stage::Done(outcome?);
        }
        Ok(())
    }

    fn start(&mut self, head: &[u8], compression: Compression) -> Res<()> {
        let gzip_magic = head.starts_with(&[0x1f, 0x8b]);
        let gzip = match compression {
            Compression::Gzip if !gzip_magic => {
                return invalid("layer is not valid gzip (media type says gzip, bytes do not)");
            }
            Compression::Gzip => true,
            Compression::None => false,
            Compression::Sniff => {
                if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
                    return invalid("zstd-compressed layers are not supported");
                }
                gzip_magic
            }
        };
        let sink = TarSink::new(self.limits);
        self.stage = if gzip {
            Stage::Gzip(Box::new(GzDecoder::new(sink)))
        } else {
            Stage::Plain(Box::new(sink))
        };
        self.parse(head)
    }

    /// Ends the blob: checks its digest, then says what was found. `Ok(None)`
    /// means the layer has no `package.yaml`.
    pub fn finish(mut self) -> Res<Option<PackageMeta>> {
        if let Stage::Sniff(buf, compression) = &mut self.stage {
            let buf = std::mem::take(buf);
            let compression = *compression;
            if buf.is_empty() {
                self.check_digest()?;
                return invalid("layer is empty");
            }
            self.start(&buf, compression)?;
        }
        self.check_digest()?;
        match std::mem::replace(&mut self.stage, Stage::Done(None)) {
            Stage::Done(found) => Ok(found),
            Stage::Gzip(mut decoder) => {
                let finished = decoder.try_finish();
                let sink = decoder.get_mut();
                if let Some(e) = sink.error.take() {
                    return Err(e);
                }
                if sink.settled() {
                    return sink.outcome();
                }
                if let Err(e) = finished {
                    return invalid(format!("layer is not valid gzip: {e}"));
                }
                sink.end_of_data()
            }
            Stage::Plain(mut sink) => {
                if sink.settled() {
                    return sink.outcome();
                }
                sink.end_of_data()
            }
            Stage::Sniff(..) => unreachable!("sniff stage resolved above"),
        }
    }

    fn check_digest(&mut self) -> Res<()> {
        // The stage is done with the hash; a fresh verifier takes its place.
        let placeholder = reference::Digest::sha256(&[]).verifier();
        let verifier = std::mem::replace(&mut self.verifier, placeholder);
        verifier
            .finish("layer content")
            .map_err(|e| Invalid(format!("{e} ({} bytes read)", self.compressed)))
    }
}

/// Extracts the meta document from a whole blob held in memory (tests,
/// small layers).
pub fn extract(
    blob: &[u8],
    digest: &str,
    compression: Compression,
    limits: LayerLimits,
) -> Res<Option<PackageMeta>> {
    let mut reader = LayerReader::new(digest, compression, limits)?;
    for chunk in blob.chunks(8192) {
        reader.feed(chunk)?;
    }
    reader.finish()
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0xf) as usize] as char);
    }
    out
}

/// `sha256:<hex>` of bytes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::{Dependency, PackageKind};
    use flate2::Compression as Level;
    use flate2::write::GzEncoder;

    /// A ustar header for a regular file (or another type).
    fn header(name: &str, size: u64, typeflag: u8) -> [u8; 512] {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..108].copy_from_slice(b"0000644\0");
        h[108..116].copy_from_slice(b"0000000\0");
        h[116..124].copy_from_slice(b"0000000\0");
        h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
        h[136..148].copy_from_slice(b"00000000000\0");
        h[156] = typeflag;
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u64 = h.iter().map(|&b| b as u64).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        h
    }

    fn tar(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, body) in files {
            let name_bytes = name.as_bytes();
            if name_bytes.len() > 99 {
                out.extend_from_slice(&header("././@LongLink", name_bytes.len() as u64 + 1, b'L'));
                out.extend_from_slice(name_bytes);
                out.push(0);
                pad(&mut out);
                out.extend_from_slice(&header("truncated", body.len() as u64, b'0'));
            } else {
                out.extend_from_slice(&header(name, body.len() as u64, b'0'));
            }
            out.extend_from_slice(body);
            pad(&mut out);
        }
        out.extend_from_slice(&[0u8; 1024]);
        out
    }

    fn pad(out: &mut Vec<u8>) {
        while !out.len().is_multiple_of(512) {
            out.push(0);
        }
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Level::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn layer(files: &[(&str, &[u8])]) -> (Vec<u8>, String) {
        let blob = gzip(&tar(files));
        let digest = sha256_digest(&blob);
        (blob, digest)
    }

    fn read(blob: &[u8], digest: &str) -> Res<Option<PackageMeta>> {
        extract(blob, digest, Compression::Gzip, LayerLimits::default())
    }

    const META: &str = "apiVersion: meta.pkg.crossplane.io/v1\nkind: Configuration\nmetadata:\n  name: platform\nspec:\n  dependsOn:\n  - apiVersion: pkg.crossplane.io/v1\n    kind: Provider\n    package: xpkg.upbound.io/upbound/provider-aws-s3\n    version: '>=v1.0.0'\n  - function: xpkg.upbound.io/crossplane-contrib/function-patch-and-transform\n    version: v0.8.0\n  - provider: xpkg.upbound.io/upbound/provider-family-aws\n  - configuration: example.com/base\n    version: \">=1.2\"\n";

    fn crd(i: usize) -> String {
        format!(
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: things{i}.example.org\nspec:\n  group: example.org\n  description: {}\n",
            (0..16)
                .map(|j| hex(&Sha256::digest(format!("{i}/{j}").as_bytes())))
                .collect::<String>()
        )
    }

    fn expected() -> PackageMeta {
        PackageMeta {
            kind: Some(PackageKind::Configuration),
            name: "platform".into(),
            depends_on: vec![
                Dependency {
                    package: "xpkg.upbound.io/upbound/provider-aws-s3".into(),
                    kind: PackageKind::Provider,
                    version: ">=v1.0.0".into(),
                },
                Dependency {
                    package: "xpkg.upbound.io/crossplane-contrib/function-patch-and-transform"
                        .into(),
                    kind: PackageKind::Function,
                    version: "v0.8.0".into(),
                },
                Dependency {
                    package: "xpkg.upbound.io/upbound/provider-family-aws".into(),
                    kind: PackageKind::Provider,
                    version: String::new(),
                },
                Dependency {
                    package: "example.com/base".into(),
                    kind: PackageKind::Configuration,
                    version: ">=1.2".into(),
                },
            ],
        }
    }

    #[test]
    fn meta_document_first_with_both_depends_on_forms() {
        let mut yaml = format!("---\n{META}");
        for i in 0..50 {
            yaml.push_str(&format!("---\n{}", crd(i)));
        }
        let (blob, digest) = layer(&[("package.yaml", yaml.as_bytes())]);
        assert_eq!(read(&blob, &digest).unwrap(), Some(expected()));
    }

    #[test]
    fn package_yaml_strings_and_lists_are_bounded_and_named() {
        let long_path = format!("xpkg.upbound.io/{}", "a".repeat(600));
        let cases = [
            (
                format!(
                    "apiVersion: meta.pkg.crossplane.io/v1\nkind: Provider\nmetadata:\n  name: p\nspec:\n  dependsOn:\n  - provider: {long_path}\n    version: v1\n"
                ),
                "spec.dependsOn[0].provider must be at most 512 characters",
            ),
            (
                format!(
                    "apiVersion: meta.pkg.crossplane.io/v1\nkind: Provider\nmetadata:\n  name: p\nspec:\n  dependsOn:\n  - provider: a.io/b\n    version: \"{}\"\n",
                    "1".repeat(300)
                ),
                "spec.dependsOn[0].version must be at most 256 characters",
            ),
            (
                format!(
                    "apiVersion: meta.pkg.crossplane.io/v1\nkind: Provider\nmetadata:\n  name: p\nspec:\n  dependsOn:\n{}",
                    "  - provider: a.io/b\n    version: v1\n".repeat(129)
                ),
                "spec.dependsOn must have at most 128 items, got 129",
            ),
        ];
        for (yaml, want) in cases {
            let (blob, digest) = layer(&[("package.yaml", yaml.as_bytes())]);
            let error = read(&blob, &digest).expect_err(want).to_string();
            assert!(error.contains(want), "{error}");
            assert!(error.len() < 300, "the long value is not quoted: {error}");
        }
    }

    #[test]
    fn meta_document_after_other_documents_and_files() {
        let mut yaml = String::from("# leading comment\n");
        for i in 0..20 {
            yaml.push_str(&format!("{}---\n", crd(i)));
        }
        yaml.push_str(META);
        yaml.push_str("...\n---\n");
        yaml.push_str(&crd(99));
        let long_dir = "d".repeat(120);
        let other = format!("{long_dir}/notes.txt");
        let (blob, digest) = layer(&[
            ("README.md", b"hello"),
            (other.as_str(), b"not it"),
            ("./package.yaml", yaml.as_bytes()),
        ]);
        assert_eq!(read(&blob, &digest).unwrap(), Some(expected()));
    }

    #[test]
    fn flow_style_meta_document_and_plain_tar() {
        let yaml = "{\"apiVersion\": \"meta.pkg.crossplane.io/v1\", \"kind\": \"Provider\", \"metadata\": {\"name\": \"p\"}}\n";
        let blob = tar(&[("package.yaml", yaml.as_bytes())]);
        let digest = sha256_digest(&blob);
        let meta = extract(&blob, &digest, Compression::None, LayerLimits::default())
            .unwrap()
            .unwrap();
        assert_eq!(meta.kind, Some(PackageKind::Provider));
        assert_eq!(meta.name, "p");
        // Sniffing sees it is not gzip.
        let meta = extract(&blob, &digest, Compression::Sniff, LayerLimits::default()).unwrap();
        assert!(meta.is_some());
    }

    #[test]
    fn long_names_via_gnu_and_pax() {
        let yaml = META.as_bytes();
        let long = format!("{}/package.yaml", "p".repeat(150));
        let (blob, digest) = layer(&[(long.as_str(), yaml)]);
        assert_eq!(read(&blob, &digest).unwrap(), Some(expected()));

        let mut t = Vec::new();
        let record = format!("path={}/package.yaml\n", "q".repeat(200));
        let record = format!("{} {record}", record.len() + 4);
        t.extend_from_slice(&header("PaxHeaders/x", record.len() as u64, b'x'));
        t.extend_from_slice(record.as_bytes());
        pad(&mut t);
        t.extend_from_slice(&header("short-name", yaml.len() as u64, b'0'));
        t.extend_from_slice(yaml);
        pad(&mut t);
        t.extend_from_slice(&[0u8; 1024]);
        let blob = gzip(&t);
        assert_eq!(
            read(&blob, &sha256_digest(&blob)).unwrap(),
            Some(expected())
        );
    }

    #[test]
    fn stops_decompressing_once_found_but_still_checks_the_digest() {
        let mut yaml = META.to_string();
        for i in 0..2000 {
            yaml.push_str(&format!("---\n{}", crd(i)));
        }
        let (blob, digest) = layer(&[("package.yaml", yaml.as_bytes())]);
        let mut reader =
            LayerReader::new(&digest, Compression::Gzip, LayerLimits::default()).unwrap();
        let mut done_at = None;
        for chunk in blob.chunks(4096) {
            reader.feed(chunk).unwrap();
            if reader.parsing_done() && done_at.is_none() {
                done_at = Some(reader.compressed_bytes());
            }
        }
        assert!(
            done_at.unwrap() < blob.len() as u64 / 4,
            "{done_at:?} of {}",
            blob.len()
        );
        assert_eq!(reader.finish().unwrap(), Some(expected()));
    }

    #[test]
    fn digest_mismatch() {
        let (blob, _) = layer(&[("package.yaml", META.as_bytes())]);
        let wrong = sha256_digest(b"something else");
        let e = read(&blob, &wrong).unwrap_err();
        assert!(e.0.contains("does not match its digest"), "{e}");
        let e = LayerReader::new("md5:abc", Compression::Gzip, LayerLimits::default())
            .err()
            .unwrap();
        assert!(e.0.contains("is not a digest"), "{e}");
    }

    /// `sha512:<hex>` of bytes.
    fn sha512_digest(bytes: &[u8]) -> String {
        format!("sha512:{}", hex(&sha2::Sha512::digest(bytes)))
    }

    /// A sha512 layer is verified as a sha256 one is: the right bytes are
    /// read, wrong bytes are refused naming the digest expected.
    #[test]
    fn sha512_layers() {
        let (blob, _) = layer(&[("package.yaml", META.as_bytes())]);
        let digest = sha512_digest(&blob);
        assert_eq!(read(&blob, &digest).unwrap(), Some(expected()));

        let wrong = sha512_digest(b"something else");
        let e = read(&blob, &wrong).unwrap_err();
        assert!(e.0.contains("does not match its digest"), "{e}");
        assert!(e.0.contains(&wrong), "names the digest: {e}");
        assert!(e.0.contains(&digest), "names what the bytes hash to: {e}");

        // The same bytes named by their sha256 digest under sha512 are refused.
        let e = read(&blob, &format!("sha512:{}", &digest[7..71])).unwrap_err();
        assert!(e.0.contains("is not a digest"), "{e}");
    }

    /// Feeds `blob` in chunks of `size` and says what the reader answers.
    fn read_in_chunks(blob: &[u8], size: usize) -> String {
        let digest = sha256_digest(blob);
        let mut reader = LayerReader::new(&digest, Compression::Sniff, LayerLimits::default())
            .expect("a well-formed digest");
        for chunk in blob.chunks(size) {
            if let Err(e) = reader.feed(chunk) {
                return format!("{e:?}");
            }
        }
        format!("{:?}", reader.finish().map(|m| m.map(|m| m.name)))
    }

    #[test]
    fn the_error_named_does_not_depend_on_where_chunks_fall() {
        // Found by tests/fuzz.rs: a gzip stream that turns corrupt right
        // after inflating a bad tar header. Fed whole, the decoder's error
        // came first and hid the header the decoder still held; the tar
        // walk now gets what was inflated before the decoder's error counts.
        let blob: Vec<u8> = [
            "1f8b08000000000004fff200011b05137a900101010100b91000010101010101",
            "01010100791cb81030600001020200ba00f1000b010850404000039b006f40c0",
            "00008380ca1300610d002d01fc6a08b00aee241036004759301f810202021202",
            "027e04040404006901016d0101010101edd08100000000c3a0fb531f6485d030",
            "60203b702eafb5ef00040000",
        ]
        .concat()
        .as_bytes()
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect();
        let whole = read_in_chunks(&blob, 8192);
        assert!(whole.contains("not a tar archive"), "{whole}");
        for size in [1, 2, 7, 64, 81, 139] {
            assert_eq!(read_in_chunks(&blob, size), whole, "chunks of {size}");
        }
    }

    #[test]
    fn corrupt_gzip() {
        let (mut blob, _) = layer(&[("package.yaml", META.as_bytes())]);
        for b in blob.iter_mut().skip(20).take(40) {
            *b ^= 0x5a;
        }
        let e = read(&blob, &sha256_digest(&blob)).unwrap_err();
        assert!(e.0.contains("gzip") || e.0.contains("tar"), "{e}");

        let plain = tar(&[("package.yaml", META.as_bytes())]);
        let e = read(&plain, &sha256_digest(&plain)).unwrap_err();
        assert!(e.0.contains("not valid gzip"), "{e}");

        let (blob, _) = layer(&[("package.yaml", META.as_bytes())]);
        let cut = &blob[..blob.len() / 2];
        let e = read(cut, &sha256_digest(cut)).unwrap_err();
        assert!(e.0.contains("gzip") || e.0.contains("truncated"), "{e}");

        let garbage = vec![7u8; 2000];
        let e = extract(
            &garbage,
            &sha256_digest(&garbage),
            Compression::None,
            LayerLimits::default(),
        )
        .unwrap_err();
        assert!(e.0.contains("not a tar archive"), "{e}");
    }

    #[test]
    fn oversized_layers() {
        let mut yaml = String::new();
        for i in 0..200 {
            yaml.push_str(&format!("---\n{}", crd(i)));
        }
        yaml.push_str("---\n");
        yaml.push_str(META);
        let (blob, digest) = layer(&[("package.yaml", yaml.as_bytes())]);
        let small = LayerLimits {
            max_compressed_bytes: 1024,
            ..LayerLimits::default()
        };
        let e = extract(&blob, &digest, Compression::Gzip, small).unwrap_err();
        assert!(e.0.contains("compressed"), "{e}");
        let small = LayerLimits {
            max_uncompressed_bytes: 64 * 1024,
            ..LayerLimits::default()
        };
        let e = extract(&blob, &digest, Compression::Gzip, small).unwrap_err();
        assert!(e.0.contains("uncompressed"), "{e}");

        // A huge meta document (megabytes of comments inside it) is refused.
        let mut big = META.to_string();
        for _ in 0..2000 {
            big.push_str(&format!("# {}\n", "#".repeat(1000)));
        }
        let (blob, digest) = layer(&[("package.yaml", big.as_bytes())]);
        let e = read(&blob, &digest).unwrap_err();
        assert!(e.0.contains("larger than 1048576 bytes"), "{e}");

        // So is a single endless line.
        let line = format!(
            "apiVersion: meta.pkg.crossplane.io/v1\nkind: Provider\nx: {}\n",
            "y".repeat(2 << 20)
        );
        let (blob, digest) = layer(&[("package.yaml", line.as_bytes())]);
        let e = read(&blob, &digest).unwrap_err();
        assert!(e.0.contains("larger than"), "{e}");
    }

    #[test]
    fn too_many_entries() {
        let names: Vec<String> = (0..50).map(|i| format!("f{i}")).collect();
        let mut files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
        files.push(("package.yaml", META.as_bytes()));
        let (blob, digest) = layer(&files);
        let small = LayerLimits {
            max_tar_entries: 10,
            ..LayerLimits::default()
        };
        let e = extract(&blob, &digest, Compression::Gzip, small).unwrap_err();
        assert!(e.0.contains("more than 10 entries"), "{e}");
        assert!(read(&blob, &digest).unwrap().is_some());
    }

    #[test]
    fn deep_yaml() {
        let mut nested = String::from(
            "apiVersion: meta.pkg.crossplane.io/v1\nkind: Provider\nmetadata:\n  name: deep\nx: ",
        );
        nested.push_str(&"[".repeat(100));
        nested.push_str(&"]".repeat(100));
        nested.push('\n');
        let (blob, digest) = layer(&[("package.yaml", nested.as_bytes())]);
        let e = read(&blob, &digest).unwrap_err();
        assert!(
            e.0.contains("nested too deeply") || e.0.contains("recursion"),
            "{e}"
        );

        let mut block =
            String::from("apiVersion: meta.pkg.crossplane.io/v1\nkind: Provider\nspec:\n");
        for d in 1..60 {
            block.push_str(&format!("{}k{d}:\n", "  ".repeat(d)));
        }
        let (blob, digest) = layer(&[("package.yaml", block.as_bytes())]);
        let e = read(&blob, &digest).unwrap_err();
        assert!(e.0.contains("nested too deeply"), "{e}");

        // Alias expansion bombs are refused by the YAML parser.
        let bomb = "apiVersion: meta.pkg.crossplane.io/v1\nkind: Provider\na: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n";
        let (blob, digest) = layer(&[("package.yaml", bomb.as_bytes())]);
        assert!(read(&blob, &digest).is_err());
    }

    #[test]
    fn missing_package_yaml_or_meta_document() {
        let (blob, digest) = layer(&[("other.yaml", META.as_bytes())]);
        assert_eq!(read(&blob, &digest).unwrap(), None);

        let yaml = format!("{}---\n{}", crd(1), crd(2));
        let (blob, digest) = layer(&[("package.yaml", yaml.as_bytes())]);
        let e = read(&blob, &digest).unwrap_err();
        assert!(
            e.0.contains("has no meta.pkg.crossplane.io/* document (2 documents read)"),
            "{e}"
        );

        let e = read(&[], &sha256_digest(&[])).unwrap_err();
        assert!(e.0.contains("empty"), "{e}");
    }

    #[test]
    fn bad_dependencies_are_named() {
        let yaml = "apiVersion: meta.pkg.crossplane.io/v1\nkind: Configuration\nmetadata:\n  name: c\nspec:\n  dependsOn:\n  - provider: a/b\n  - version: v1\n";
        let (blob, digest) = layer(&[("package.yaml", yaml.as_bytes())]);
        let e = read(&blob, &digest).unwrap_err();
        assert!(e.0.contains("spec.dependsOn[1] names no package"), "{e}");

        let yaml = "apiVersion: meta.pkg.crossplane.io/v1\nkind: Configuration\nspec:\n  dependsOn:\n  - package: a/b\n    kind: Widget\n";
        let (blob, digest) = layer(&[("package.yaml", yaml.as_bytes())]);
        let e = read(&blob, &digest).unwrap_err();
        assert!(
            e.0.contains("spec.dependsOn[0] (a/b): unknown package kind"),
            "{e}"
        );

        // Numbers are versions too; a missing dependsOn is no dependency.
        let yaml = "apiVersion: meta.pkg.crossplane.io/v1beta1\nkind: Function\nmetadata:\n  name: f\nspec:\n  dependsOn:\n  - provider: a/b\n    version: 1.5\n";
        let (blob, digest) = layer(&[("package.yaml", yaml.as_bytes())]);
        let meta = read(&blob, &digest).unwrap().unwrap();
        assert_eq!(meta.kind, Some(PackageKind::Function));
        assert_eq!(meta.depends_on[0].version, "1.5");
    }

    #[test]
    fn compression_from_media_type() {
        use Compression::*;
        let cases = [
            ("application/vnd.oci.image.layer.v1.tar+gzip", Gzip),
            ("application/vnd.docker.image.rootfs.diff.tar.gzip", Gzip),
            ("application/vnd.oci.image.layer.v1.tar", None),
            ("application/octet-stream", Sniff),
        ];
        for (mt, c) in cases {
            assert_eq!(Compression::from_media_type(mt).unwrap(), c, "{mt}");
        }
        assert!(
            Compression::from_media_type("application/vnd.oci.image.layer.v1.tar+zstd").is_err()
        );
    }
}
