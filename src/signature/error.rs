//! Why signature material could not be read, and the two readers every
//! parser here uses: base64 and bounded JSON.

/// Why signature material could not be read.
#[derive(Clone, Debug, thiserror::Error)]
pub enum Error {
    #[error("{what} is {len} bytes, more than the {max} allowed")]
    TooLarge {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{what} is not what its schema says")]
    Json {
        what: &'static str,
        #[source]
        source: std::sync::Arc<serde_json::Error>,
    },
    #[error("{what} is not valid base64")]
    Base64 {
        what: &'static str,
        #[source]
        source: base64::DecodeError,
    },
    #[error("{what}: {message}")]
    Invalid { what: &'static str, message: String },
    #[error("the public key is not an ECDSA P-256 public key in PEM (-----BEGIN PUBLIC KEY-----)")]
    Key {
        #[source]
        source: p256::pkcs8::spki::Error,
    },
}

/// Decodes `text` as standard base64, naming `what` on failure.
pub(super) fn base64(text: &str, what: &'static str) -> Result<Vec<u8>, Error> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|source| Error::Base64 { what, source })
}

/// Reads JSON of at most `max` bytes, naming `what` on failure.
pub(super) fn json<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    max: usize,
    what: &'static str,
) -> Result<T, Error> {
    if bytes.len() > max {
        return Err(Error::TooLarge {
            what,
            len: bytes.len(),
            max,
        });
    }
    serde_json::from_slice(bytes).map_err(|e| Error::Json {
        what,
        source: std::sync::Arc::new(e),
    })
}
