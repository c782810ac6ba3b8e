//! HTTPS for the test upstream: a throwaway certificate authority made at start-up and a
//! server certificate it signs for `127.0.0.1` and `localhost`. Clients trust it through the
//! CA's PEM ([`crate::Upstream::ca_pem`]), e.g. `SSL_CERT_FILE=ca.pem`, never by turning
//! verification off.

use std::io;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A CA and the rustls server configuration of a certificate it signed.
pub(crate) struct TlsIdentity {
    /// The CA certificate, PEM.
    pub(crate) ca_pem: String,
    /// What the acceptor serves.
    pub(crate) config: Arc<rustls::ServerConfig>,
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("test TLS identity: {e}"))
}

/// Makes a new CA and a server certificate for `127.0.0.1` and `localhost` signed by it.
pub(crate) fn identity() -> io::Result<TlsIdentity> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(invalid)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "strata-upstream test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().map_err(invalid)?;
    let ca_cert = ca_params.self_signed(&ca_key).map_err(invalid)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let mut leaf_params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .map_err(invalid)?;
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "strata-upstream");
    leaf_params.use_authority_key_identifier_extension = true;
    leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = KeyPair::generate().map_err(invalid)?;
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).map_err(invalid)?;

    let chain = vec![
        CertificateDer::from(leaf.der().to_vec()),
        CertificateDer::from(ca_cert.der().to_vec()),
    ];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(invalid)?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(invalid)?;
    Ok(TlsIdentity {
        ca_pem: ca_cert.pem(),
        config: Arc::new(config),
    })
}
