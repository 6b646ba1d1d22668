//! TLS identities bound to device keys, for the QUIC endpoint.
//!
//! Every device presents a self-signed X.509 certificate whose key *is* its
//! ed25519 device key, and which carries the device certificate (the user
//! key's signature over the device keys) in a private extension. Both sides
//! verify, during the handshake, that:
//! 1. the X.509 key is ed25519,
//! 2. the embedded device certificate is validly signed by its user key,
//! 3. the device certificate names exactly the X.509 key, and
//! 4. the TLS handshake signature was made with that key (rustls).
//!
//! So a connection's peer is authenticated as "device D of user U" without
//! any certificate authority: ids are hashes of keys. Which devices to trust
//! by name is the peer book's business, not TLS's.
//!
//! The relay presents and verifies identities by these same rules (its
//! own key is a device key), which is why they live here and not in the
//! node.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use tincan_core::{DeviceCert, Identity};

/// ALPN protocol id of tincan's peer protocol.
pub const ALPN: &[u8] = b"tincan/1";

/// ALPN protocol id of pairing a new device (`tincan device add`): a
/// connection that speaks only `Frame::Pair`, never a peer connection, so
/// the new device's provisional identity is never learned as a peer.
pub const PAIR_ALPN: &[u8] = b"tincan-pair/1";

/// The server name every node dials; identity is checked by key, not name.
pub const SERVER_NAME: &str = "tincan.invalid";

/// Private-enterprise-style OID of the extension holding the device
/// certificate. Unregistered: it only has to be stable between tincan nodes.
const DEVICE_CERT_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 59_999, 7, 1];
const ED25519_OID: &str = "1.3.101.112";

/// Why a TLS identity could not be built or accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsIdentityError {
    /// The X.509 certificate could not be generated.
    #[error("cannot build the tls certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the configuration.
    #[error("tls configuration: {0}")]
    Config(#[from] rustls::Error),
    /// The peer's certificate is not valid DER X.509.
    #[error("peer certificate is not valid x.509")]
    BadEncoding,
    /// The peer's certificate key is not ed25519.
    #[error("peer certificate key is not ed25519")]
    NotEd25519,
    /// The peer's certificate carries no tincan device certificate.
    #[error("peer certificate carries no tincan device certificate")]
    MissingDeviceCert,
    /// The embedded device certificate is malformed or badly signed.
    #[error("peer device certificate is invalid: {0}")]
    DeviceCert(#[from] tincan_core::CertError),
    /// The device certificate names another key than the TLS certificate.
    #[error("peer device certificate names another key than its tls certificate")]
    KeyMismatch,
}

/// The X.509 certificate and key this device presents.
pub fn device_tls_identity(
    identity: &Identity,
) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), TlsIdentityError> {
    let pkcs8 = PrivatePkcs8KeyDer::from(identity.device.to_pkcs8_der());
    let key_pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, &rcgen::PKCS_ED25519)?;
    let mut params = rcgen::CertificateParams::new(vec![SERVER_NAME.to_string()])?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, identity.device_id().to_string());
    params
        .custom_extensions
        .push(rcgen::CustomExtension::from_oid_content(
            DEVICE_CERT_OID,
            identity.cert.to_bytes(),
        ));
    let cert = params.self_signed(&key_pair)?;
    Ok((cert.der().clone(), PrivateKeyDer::Pkcs8(pkcs8)))
}

/// Checks steps 1–3 of the module doc and returns the peer's device certificate.
pub fn device_cert_of(cert: &CertificateDer<'_>) -> Result<DeviceCert, TlsIdentityError> {
    let (_, x509) =
        x509_parser::parse_x509_certificate(cert).map_err(|_| TlsIdentityError::BadEncoding)?;
    let spki = x509.public_key();
    if spki.algorithm.algorithm.to_id_string() != ED25519_OID {
        return Err(TlsIdentityError::NotEd25519);
    }
    let tls_key: [u8; 32] = spki
        .subject_public_key
        .data
        .as_ref()
        .try_into()
        .map_err(|_| TlsIdentityError::NotEd25519)?;
    let oid = DEVICE_CERT_OID
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".");
    let ext = x509
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == oid)
        .ok_or(TlsIdentityError::MissingDeviceCert)?;
    let device_cert = DeviceCert::from_bytes(ext.value)?;
    device_cert.verify()?;
    if device_cert.device_key != tls_key {
        return Err(TlsIdentityError::KeyMismatch);
    }
    Ok(device_cert)
}

/// The peer's device certificate from an established quinn connection.
pub fn peer_device_cert(conn: &quinn::Connection) -> Option<DeviceCert> {
    let identity = conn.peer_identity()?;
    let certs = identity.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    certs.first().and_then(|c| device_cert_of(c).ok())
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Verifies peers (in both roles) by their device certificate.
#[derive(Debug)]
struct DeviceVerifier {
    provider: Arc<CryptoProvider>,
}

impl DeviceVerifier {
    fn check(&self, end_entity: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        device_cert_of(end_entity).map(|_| ()).map_err(|e| {
            tracing::warn!(error = %e, "refusing peer certificate");
            rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            )
        })
    }

    fn tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

impl ServerCertVerifier for DeviceVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity)
            .map(|_| ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes()
    }
}

impl ClientCertVerifier for DeviceVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check(end_entity)
            .map(|_| ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes()
    }
}

/// rustls configurations for both roles, mutual authentication on.
pub fn rustls_configs(
    identity: &Identity,
) -> Result<(rustls::ServerConfig, rustls::ClientConfig), TlsIdentityError> {
    let provider = provider();
    let verifier = Arc::new(DeviceVerifier {
        provider: provider.clone(),
    });
    let (cert, key) = device_tls_identity(identity)?;
    let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier.clone())
        .with_single_cert(vec![cert.clone()], key.clone_key())?;
    server.alpn_protocols = vec![ALPN.to_vec(), PAIR_ALPN.to_vec()];
    let mut client = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(vec![cert], key)?;
    client.alpn_protocols = vec![ALPN.to_vec()];
    Ok((server, client))
}

/// The client configuration of a device being paired: mutual
/// authentication as for peers, speaking [`PAIR_ALPN`].
pub fn pairing_client_config(
    identity: &Identity,
) -> Result<rustls::ClientConfig, TlsIdentityError> {
    let (_, mut client) = rustls_configs(identity)?;
    client.alpn_protocols = vec![PAIR_ALPN.to_vec()];
    Ok(client)
}

/// Whether `conn` was opened for pairing ([`PAIR_ALPN`]).
pub fn is_pairing(conn: &quinn::Connection) -> bool {
    conn.handshake_data()
        .and_then(|data| data.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .and_then(|data| data.protocol)
        .is_some_and(|protocol| protocol == PAIR_ALPN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tincan_core::entropy::SeededEntropy;

    #[test]
    fn own_certificate_verifies_and_names_the_device() {
        let id = Identity::generate("alice", 1, &mut SeededEntropy::new(1));
        let (cert, _) = device_tls_identity(&id).expect("cert");
        let device_cert = device_cert_of(&cert).expect("valid");
        assert_eq!(device_cert, id.cert);
    }

    #[test]
    fn a_certificate_embedding_another_devices_cert_is_refused() {
        let alice = Identity::generate("alice", 1, &mut SeededEntropy::new(1));
        let mut mallory = Identity::generate("mallory", 1, &mut SeededEntropy::new(2));
        // Mallory presents her own TLS key but claims Alice's device certificate.
        mallory.cert = alice.cert.clone();
        let (cert, _) = device_tls_identity(&mallory).expect("cert");
        assert!(matches!(
            device_cert_of(&cert),
            Err(TlsIdentityError::KeyMismatch)
        ));
    }

    #[test]
    fn garbage_is_a_clear_error() {
        let junk = CertificateDer::from(vec![0x30, 0x03, 0x01, 0x02, 0x03]);
        assert!(matches!(
            device_cert_of(&junk),
            Err(TlsIdentityError::BadEncoding)
        ));
    }
}
