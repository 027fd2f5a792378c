//! The signing certificate: its path to a trusted certificate authority at
//! the logged time, and the identity it records.

use x509_cert::Certificate;
use x509_cert::der::asn1::{ObjectIdentifier, Utf8StringRef};
use x509_cert::der::{Decode, Encode, Header, Reader, SliceReader};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, SubjectAltName};

use super::ecdsa::{self, Hash};
use super::failure::Failure;
use super::identity::Found;
use super::root::Authority;
use crate::spec::limits::MAX_CERTIFICATE_CHAIN;

const CODE_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");
const ANY_EKU: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37.0");
const ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
/// Fulcio's OIDC issuer (v2): a DER UTF8String.
const FULCIO_ISSUER_V2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.8");
/// Fulcio's OIDC issuer (v1, deprecated): the raw string bytes.
const FULCIO_ISSUER_V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.1");

/// A certificate with the DER it was read from.
pub(super) struct Parsed<'a> {
    pub der: &'a [u8],
    pub cert: Certificate,
}

impl<'a> Parsed<'a> {
    pub(super) fn new(der: &'a [u8]) -> Result<Self, Failure> {
        let cert = Certificate::from_der(der)
            .map_err(|e| Failure::Malformed(format!("certificate is not DER X.509: {e}")))?;
        Ok(Parsed { der, cert })
    }

    /// The key, as DER SubjectPublicKeyInfo.
    pub(super) fn public_key(&self) -> Result<Vec<u8>, Failure> {
        self.cert
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .map_err(|e| Failure::Malformed(format!("certificate public key: {e}")))
    }

    fn validity(&self) -> (i64, i64) {
        let validity = self.cert.tbs_certificate().validity();
        let secs = |t: x509_cert::time::Time| {
            i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
        };
        (secs(validity.not_before), secs(validity.not_after))
    }

    fn valid_at(&self, t: i64) -> bool {
        let (not_before, not_after) = self.validity();
        not_before <= t && t <= not_after
    }

    fn is_ca(&self) -> bool {
        matches!(
            self.cert.tbs_certificate().get_extension::<BasicConstraints>(),
            Ok(Some((_, constraints))) if constraints.ca
        )
    }

    /// Whether the extended key usages allow code signing: `required`, the
    /// leaf must name it; otherwise (a CA) no extension allows anything.
    fn allows_code_signing(&self, required: bool) -> bool {
        match self
            .cert
            .tbs_certificate()
            .get_extension::<ExtendedKeyUsage>()
        {
            Ok(Some((_, eku))) => eku
                .0
                .iter()
                .any(|oid| *oid == CODE_SIGNING || (!required && *oid == ANY_EKU)),
            Ok(None) => !required,
            Err(_) => false,
        }
    }

    /// Whether `issuer` signed this certificate.
    fn signed_by(&self, issuer: &Parsed<'_>) -> bool {
        if self.cert.tbs_certificate().issuer() != issuer.cert.tbs_certificate().subject() {
            return false;
        }
        let algorithm = self.cert.signature_algorithm();
        if *algorithm != *self.cert.tbs_certificate().signature() {
            return false;
        }
        let hash = match algorithm.oid {
            oid if oid == ECDSA_SHA256 => Hash::Sha256,
            oid if oid == ECDSA_SHA384 => Hash::Sha384,
            _ => return false,
        };
        let (Ok(key), Some(tbs), Some(signature)) = (
            issuer.public_key(),
            tbs_bytes(self.der),
            self.cert.signature().as_bytes(),
        ) else {
            return false;
        };
        ecdsa::verify(&key, hash, tbs, signature).is_ok()
    }
}

/// The to-be-signed part of a certificate, as its DER has it.
fn tbs_bytes(der: &[u8]) -> Option<&[u8]> {
    let mut reader = SliceReader::new(der).ok()?;
    Header::decode(&mut reader).ok()?;
    reader.tlv_bytes().ok()
}

/// Checks the leaf of `chain` at the integrated time `t`: valid then, for
/// code signing, and on a path through `chain`'s other certificates and an
/// authority's chain to that authority's root, every certificate valid at
/// `t` and every signature verified. Returns the leaf.
pub(super) fn verify_chain<'a>(
    chain: &'a [Vec<u8>],
    authorities: &[Authority],
    t: i64,
) -> Result<Parsed<'a>, Failure> {
    if chain.len() > MAX_CERTIFICATE_CHAIN {
        return Err(Failure::Malformed(format!(
            "{} certificates, over the {MAX_CERTIFICATE_CHAIN} allowed",
            chain.len()
        )));
    }
    let [leaf, intermediates @ ..] = chain else {
        return Err(Failure::Malformed("no signing certificate".to_owned()));
    };
    let leaf = Parsed::new(leaf)?;
    if !leaf.valid_at(t) {
        let (not_before, not_after) = leaf.validity();
        return Err(Failure::CertificateExpiredAtSigning {
            integrated_time: t,
            not_before,
            not_after,
        });
    }
    if !leaf.allows_code_signing(true) {
        return Err(Failure::CertificateNotTrusted(
            "no code signing extended key usage".to_owned(),
        ));
    }
    let intermediates: Vec<Parsed<'_>> = intermediates
        .iter()
        .filter_map(|der| Parsed::new(der).ok())
        .collect();
    let mut why = format!("no certificate authority valid at {t}");
    for authority in authorities.iter().filter(|a| a.valid.contains(t)) {
        match path(&leaf, &intermediates, authority, t) {
            Ok(()) => return Ok(leaf),
            Err(reason) => why = reason,
        }
    }
    Err(Failure::CertificateNotTrusted(why))
}

/// Walks from `leaf` to `authority`'s root (the last of its chain), taking
/// each issuer from the intermediates given and the authority's chain.
fn path(
    leaf: &Parsed<'_>,
    intermediates: &[Parsed<'_>],
    authority: &Authority,
    t: i64,
) -> Result<(), String> {
    let trusted: Vec<Parsed<'_>> = authority
        .chain
        .iter()
        .filter_map(|der| Parsed::new(der).ok())
        .collect();
    let Some(root) = authority.chain.last() else {
        return Err("certificate authority without certificates".to_owned());
    };
    let candidates: Vec<&Parsed<'_>> = intermediates.iter().chain(trusted.iter()).collect();
    let mut current = leaf;
    for _ in 0..MAX_CERTIFICATE_CHAIN {
        let issuer = candidates
            .iter()
            .find(|c| {
                c.is_ca() && c.valid_at(t) && c.allows_code_signing(false) && current.signed_by(c)
            })
            .ok_or_else(|| "no trusted issuer signed the certificate".to_owned())?;
        if issuer.der == root.as_slice() {
            return Ok(());
        }
        current = issuer;
    }
    Err("certificate chain too long".to_owned())
}

/// The issuer and subjects a Fulcio certificate records.
pub(super) fn identity(leaf: &Parsed<'_>) -> Found {
    let tbs = leaf.cert.tbs_certificate();
    let extensions = tbs.extensions().map(|e| e.as_slice()).unwrap_or_default();
    let value = |oid: ObjectIdentifier| {
        extensions
            .iter()
            .find(|e| e.extn_id == oid)
            .map(|e| e.extn_value.as_bytes())
    };
    let issuer = value(FULCIO_ISSUER_V2)
        .and_then(|der| {
            Utf8StringRef::from_der(der)
                .ok()
                .map(|s| s.as_str().to_owned())
        })
        .or_else(|| value(FULCIO_ISSUER_V1).and_then(|raw| String::from_utf8(raw.to_vec()).ok()));
    let subjects = match tbs.get_extension::<SubjectAltName>() {
        Ok(Some((_, san))) => san
            .0
            .iter()
            .filter_map(|name| match name {
                GeneralName::Rfc822Name(email) => Some(email.to_string()),
                GeneralName::UniformResourceIdentifier(uri) => Some(uri.to_string()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    Found { issuer, subjects }
}
