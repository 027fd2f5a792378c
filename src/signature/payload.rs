//! cosign's simple-signing payload: the JSON a legacy signature signs,
//! naming the image by its manifest digest in
//! `critical.image.docker-manifest-digest`. Only that and the type are
//! read; the rest (`identity`, `optional`) says nothing the digest does not.

use serde::Deserialize;

use super::error::{Error, json};
use crate::reference::Digest;
use crate::spec::limits::MAX_SIGNATURE_PAYLOAD_BYTES;

/// The media type of a cosign simple-signing payload layer.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation holding a legacy signature (base64 DER).
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

/// The `critical.type` of a cosign image signature.
pub const SIMPLE_SIGNING_TYPE: &str = "cosign container image signature";

/// A simple-signing payload, read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimpleSigning {
    /// The image it vouches for.
    pub digest: Digest,
}

#[derive(Deserialize)]
struct Raw {
    critical: Critical,
}

#[derive(Deserialize)]
struct Critical {
    image: Image,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    digest: String,
}

impl SimpleSigning {
    /// Reads a payload of at most [`MAX_SIGNATURE_PAYLOAD_BYTES`].
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let raw: Raw = json(
            bytes,
            MAX_SIGNATURE_PAYLOAD_BYTES,
            "the simple-signing payload",
        )?;
        if raw.critical.kind != SIMPLE_SIGNING_TYPE {
            return Err(Error::Invalid {
                what: "the simple-signing payload",
                message: format!(
                    "critical.type is {:?}, not {SIMPLE_SIGNING_TYPE:?}",
                    raw.critical.kind.chars().take(64).collect::<String>()
                ),
            });
        }
        let digest = Digest::parse(
            &raw.critical.image.digest,
            "critical.image.docker-manifest-digest",
        )
        .map_err(|e| Error::Invalid {
            what: "the simple-signing payload",
            message: e.to_string(),
        })?;
        Ok(Self { digest })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_cosigns_payload() {
        let text = r#"{"critical":{"identity":{"docker-reference":"127.0.0.1:41191/team/provider-a"},"image":{"docker-manifest-digest":"sha256:2e49c7cbb928dd7c25c6bea338bafa75a56dd9facb235191cf0f6df711eb00a6"},"type":"cosign container image signature"},"optional":null}"#;
        let payload = SimpleSigning::parse(text.as_bytes()).expect("payload");
        assert_eq!(
            payload.digest.as_str(),
            "sha256:2e49c7cbb928dd7c25c6bea338bafa75a56dd9facb235191cf0f6df711eb00a6"
        );
    }

    #[test]
    fn refuses_what_is_not_one() {
        let d = "sha256:2e49c7cbb928dd7c25c6bea338bafa75a56dd9facb235191cf0f6df711eb00a6";
        for (bad, says) in [
            ("", "schema"),
            ("{}", "schema"),
            (r#"{"critical":{"image":{},"type":"x"}}"#, "schema"),
            (
                &format!(
                    r#"{{"critical":{{"image":{{"docker-manifest-digest":"{d}"}},"type":"x"}}}}"#
                ),
                "critical.type",
            ),
            (
                r#"{"critical":{"image":{"docker-manifest-digest":"v1.0.0"},"type":"cosign container image signature"}}"#,
                "docker-manifest-digest",
            ),
        ] {
            let err = SimpleSigning::parse(bad.as_bytes()).unwrap_err();
            let shown = crate::error::error_chain(&err);
            assert!(shown.contains(says), "{bad}: {shown}");
        }
        let big = vec![b' '; MAX_SIGNATURE_PAYLOAD_BYTES + 1];
        assert!(matches!(
            SimpleSigning::parse(&big),
            Err(Error::TooLarge { .. })
        ));
    }

    proptest! {
        #[test]
        fn any_bytes_are_read_or_refused(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = SimpleSigning::parse(&bytes);
        }

        #[test]
        fn any_digest_text_is_read_or_refused(digest in ".{0,100}", kind in "cosign container image signature|.{0,20}") {
            let text = serde_json::json!({"critical": {"image": {"docker-manifest-digest": digest}, "type": kind}});
            let _ = SimpleSigning::parse(text.to_string().as_bytes());
        }
    }
}
