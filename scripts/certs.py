#!/usr/bin/env python3
"""TLS material for a composition function, shaped the way Crossplane makes it.

Crossplane gives each function a Secret with ``tls.crt``, ``tls.key`` and
``ca.crt``: RSA-2048 keys in PKCS#1 PEM (``-----BEGIN RSA PRIVATE KEY-----``),
one CA, a server certificate whose SANs are the function's Service names, and
a client certificate for Crossplane itself signed by the same CA.

``certs.py --out DIR`` writes:

  DIR/server/{tls.crt,tls.key,ca.crt}   -> the function's --tls-certs-dir
  DIR/client/{tls.crt,tls.key,ca.crt}   -> what Crossplane presents
  DIR/stranger/{tls.crt,tls.key,ca.crt} -> a client from ANOTHER CA

Importable too: ``write_bundle(out_dir, service=..., namespace=...)``.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    # PKCS#1 "RSA PRIVATE KEY", as Crossplane writes it.
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _name(cn: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Crossplane"),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ])


def _validity(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    return builder.not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(
        now + datetime.timedelta(days=3650))


class CA:
    def __init__(self, cn: str = "Crossplane Root CA"):
        self.key = _key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(_name(cn))
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True,
                    crl_sign=True, encipher_only=False, decipher_only=False),
                critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
        )
        self.cert = _validity(builder).sign(self.key, hashes.SHA256())

    @property
    def pem(self) -> bytes:
        return _pem_cert(self.cert)

    def issue(self, cn: str, dns: list[str] = (), ips: list[str] = ()) -> tuple[bytes, bytes]:
        """A leaf certificate for both server and client auth: (cert PEM, key PEM)."""
        key = _key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=True,
                    data_encipherment=False, key_agreement=False, key_cert_sign=False,
                    crl_sign=False, encipher_only=False, decipher_only=False),
                critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
        )
        sans = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = _validity(builder).sign(self.key, hashes.SHA256())
        return _pem_cert(cert), _pem_key(key)


def service_names(service: str, namespace: str) -> list[str]:
    return [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    ]


def _write(dir_: Path, crt: bytes, key: bytes, ca: bytes) -> None:
    dir_.mkdir(parents=True, exist_ok=True)
    (dir_ / "tls.crt").write_bytes(crt)
    (dir_ / "tls.key").write_bytes(key)
    (dir_ / "tls.key").chmod(0o600)
    (dir_ / "ca.crt").write_bytes(ca)


def write_bundle(out: Path | str, service: str = "function-ecr-packages",
                 namespace: str = "crossplane-system") -> dict[str, Path]:
    """Writes server/, client/ and stranger/ under out; returns their paths."""
    out = Path(out)
    ca = CA()
    server_crt, server_key = ca.issue(
        service, dns=service_names(service, namespace) + ["localhost"], ips=["127.0.0.1"])
    client_crt, client_key = ca.issue("crossplane")
    other = CA("Some Other CA")
    stranger_crt, stranger_key = other.issue("crossplane")

    _write(out / "server", server_crt, server_key, ca.pem)
    _write(out / "client", client_crt, client_key, ca.pem)
    # The stranger trusts the real CA (so it can verify the server) but its
    # own certificate comes from a CA the server does not trust.
    _write(out / "stranger", stranger_crt, stranger_key, ca.pem)
    (out / "stranger" / "own-ca.crt").write_bytes(other.pem)
    return {name: out / name for name in ("server", "client", "stranger")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--service", default="function-ecr-packages")
    p.add_argument("--namespace", default="crossplane-system")
    a = p.parse_args()
    for name, path in write_bundle(a.out, a.service, a.namespace).items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
