//! Fuzz target `tls_cert`: the X.509 certificate a peer presents in the
//! QUIC handshake, from which the node takes its signed device certificate
//! ([`tincan_node::tls::device_cert_of`], run by the TLS verifiers of both
//! sides before any frame is read).
//!
//! Checks, on any bytes: nothing panics, and a certificate that is taken
//! carries a device certificate that verifies.

use rustls::pki_types::CertificateDer;

/// Runs the target on one input.
pub fn run(data: &[u8]) {
    let der = CertificateDer::from(data);
    if let Ok(cert) = tincan_node::tls::device_cert_of(&der) {
        assert!(
            cert.verify().is_ok(),
            "took a device certificate that does not verify"
        );
    }
}
