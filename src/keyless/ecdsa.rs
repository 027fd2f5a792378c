//! ECDSA verification over NIST P-256 and P-384 keys given as DER
//! SubjectPublicKeyInfo: the only keys Fulcio, its CAs and Rekor use.

use p256::ecdsa::signature::hazmat::PrehashVerifier;
use sha2::Digest;
use x509_cert::der::Decode;
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::spki::SubjectPublicKeyInfoRef;

const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");

/// The digest a signature was made over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Hash {
    Sha256,
    Sha384,
}

impl Hash {
    fn digest(self, message: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => sha2::Sha256::digest(message).to_vec(),
            Hash::Sha384 => sha2::Sha384::digest(message).to_vec(),
        }
    }
}

/// Why a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum Error {
    #[error("unsupported public key ({0})")]
    Key(&'static str),
    #[error("signature does not verify")]
    Signature,
}

#[derive(Debug, Clone, Copy)]
enum Curve {
    P256,
    P384,
}

fn curve(spki: &SubjectPublicKeyInfoRef<'_>) -> Result<Curve, Error> {
    if spki.algorithm.oid != EC_PUBLIC_KEY {
        return Err(Error::Key("not an elliptic curve key"));
    }
    match spki.algorithm.parameters_oid() {
        Ok(oid) if oid == P256 => Ok(Curve::P256),
        Ok(oid) if oid == P384 => Ok(Curve::P384),
        _ => Err(Error::Key("curve other than P-256 or P-384")),
    }
}

/// The digest a key signs with when nothing else names one: SHA-256 for
/// P-256, SHA-384 for P-384 (sigstore-go's defaults).
pub(super) fn default_hash(spki_der: &[u8]) -> Result<Hash, Error> {
    let spki = SubjectPublicKeyInfoRef::from_der(spki_der)
        .map_err(|_| Error::Key("not a DER SubjectPublicKeyInfo"))?;
    Ok(match curve(&spki)? {
        Curve::P256 => Hash::Sha256,
        Curve::P384 => Hash::Sha384,
    })
}

/// Verifies a DER ECDSA `signature` over `message` hashed with `hash`,
/// with the key in `spki_der`.
pub(super) fn verify(
    spki_der: &[u8],
    hash: Hash,
    message: &[u8],
    signature: &[u8],
) -> Result<(), Error> {
    verify_prehash(spki_der, &hash.digest(message), signature)
}

/// Verifies a DER ECDSA `signature` over the digest `prehash`, with the
/// key in `spki_der`.
pub(super) fn verify_prehash(
    spki_der: &[u8],
    prehash: &[u8],
    signature: &[u8],
) -> Result<(), Error> {
    let spki = SubjectPublicKeyInfoRef::from_der(spki_der)
        .map_err(|_| Error::Key("not a DER SubjectPublicKeyInfo"))?;
    let point = spki
        .subject_public_key
        .as_bytes()
        .ok_or(Error::Key("public key is not whole bytes"))?;
    match curve(&spki)? {
        Curve::P256 => {
            let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
                .map_err(|_| Error::Key("not a P-256 point"))?;
            let sig =
                p256::ecdsa::DerSignature::from_bytes(signature).map_err(|_| Error::Signature)?;
            key.verify_prehash(prehash, &sig)
                .map_err(|_| Error::Signature)
        }
        Curve::P384 => {
            let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(point)
                .map_err(|_| Error::Key("not a P-384 point"))?;
            let sig =
                p384::ecdsa::DerSignature::from_bytes(signature).map_err(|_| Error::Signature)?;
            key.verify_prehash(prehash, &sig)
                .map_err(|_| Error::Signature)
        }
    }
}
