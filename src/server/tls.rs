//! The server's mutual TLS: the certificate, key and CA Crossplane mounts
//! into a function pod, checked when loaded so a problem names its file
//! rather than surfacing as a handshake failure at the first call.

use std::{fs, path::Path, time::Duration};

use rustls::{
    crypto::aws_lc_rs,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    sign::CertifiedKey,
};
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use super::error::ServeError;

const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How the server talks to its callers.
#[derive(Debug, Clone)]
pub enum Security {
    /// Plain HTTP/2, for local development with `crossplane render`.
    Insecure,
    /// TLS, and callers must present a certificate signed by the given CA,
    /// as Crossplane does.
    MutualTls(ServerTlsConfig),
}

impl Security {
    /// Loads `tls.crt`, `tls.key` and `ca.crt` from `dir`, the layout
    /// Crossplane mounts into function pods. Problems surface here, naming
    /// the file, rather than as a handshake failure at the first call.
    pub fn mutual_tls(dir: &Path) -> Result<Self, ServeError> {
        let read = |name: &str| {
            let path = dir.join(name).display().to_string();
            match fs::read(&path) {
                Ok(pem) => Ok((path, pem)),
                Err(source) => Err(ServeError::ReadFile { path, source }),
            }
        };
        let (cert_path, cert) = read("tls.crt")?;
        let (key_path, key) = read("tls.key")?;
        let (ca_path, ca) = read("ca.crt")?;

        let chain = certificates(&cert_path, &cert)?;
        certificates(&ca_path, &ca)?;
        // Accepts PKCS#1 (`RSA PRIVATE KEY`, what Crossplane writes), PKCS#8
        // and SEC1, and proves aws-lc can sign with the key for this chain.
        let parsed =
            PrivateKeyDer::from_pem_slice(&key).map_err(|source| ServeError::PrivateKey {
                path: key_path.clone(),
                source,
            })?;
        CertifiedKey::from_der(chain, parsed, &aws_lc_rs::default_provider()).map_err(
            |source| ServeError::KeyMismatch {
                key: key_path,
                certificate: cert_path,
                source,
            },
        )?;

        Ok(Self::MutualTls(
            ServerTlsConfig::new()
                .identity(Identity::from_pem(cert, key))
                .client_ca_root(Certificate::from_pem(ca))
                .client_auth_optional(false)
                // A peer that opens a connection and never finishes the
                // handshake must not hold it forever.
                .timeout(TLS_HANDSHAKE_TIMEOUT),
        ))
    }
}

fn certificates(path: &str, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, ServeError> {
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| ServeError::Certificates {
            path: path.to_string(),
            source,
        })?;
    if chain.is_empty() {
        return Err(ServeError::NoCertificate {
            path: path.to_string(),
        });
    }
    Ok(chain)
}
