//! The provider's TLS client side: the PEM material, and the one rustls configuration every
//! announcer connection shares.
//!
//! The configuration is built once per material (on first use), not once per connection:
//! tonic's own TLS set-up builds a configuration per connection, each with its own session
//! cache (13 KiB), parsed roots and key, which at 100 announcers was 1.5 MiB of the
//! provider's memory. Session resumption is off: the connections are long-lived, and one
//! cache under the one server name all announcers share would offer one announcer's tickets
//! to another.

use std::sync::{Arc, OnceLock};

use tokio_rustls::rustls::{
    ClientConfig, RootCertStore,
    client::Resumption,
    crypto::ring,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
};

/// What the provider's gRPC client needs to reach announcers: trust `ca_pem`, present
/// `cert_pem`/`key_pem`, and verify the server name
/// [`ANNOUNCER_SERVER_NAME`](super::ANNOUNCER_SERVER_NAME).
#[derive(Clone)]
pub struct ClientTls {
    /// PEM CA certificate(s) the announcers' server certificates chain to.
    pub ca_pem: String,
    /// PEM client certificate (chain) of the provider.
    pub cert_pem: String,
    /// PEM private key of `cert_pem`.
    pub key_pem: String,
    /// [`ClientTls::config`], built on first use.
    config: OnceLock<Result<Arc<ClientConfig>, String>>,
}

impl ClientTls {
    /// The material; its configuration is built when first asked for.
    pub fn new(ca_pem: String, cert_pem: String, key_pem: String) -> Self {
        ClientTls {
            ca_pem,
            cert_pem,
            key_pem,
            config: OnceLock::new(),
        }
    }

    /// The rustls client configuration (ALPN h2, as gRPC needs), shared by every connection
    /// made with this material; or why the material is unusable.
    pub fn config(&self) -> Result<Arc<ClientConfig>, String> {
        self.config.get_or_init(|| self.build()).clone()
    }

    fn build(&self) -> Result<Arc<ClientConfig>, String> {
        let mut roots = RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(self.ca_pem.as_bytes()) {
            let ca = ca.map_err(|e| format!("the announcers' CA certificate: {e}"))?;
            roots
                .add(ca)
                .map_err(|e| format!("the announcers' CA certificate: {e}"))?;
        }
        let chain = CertificateDer::pem_slice_iter(self.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("the provider's client certificate: {e}"))?;
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes())
            .map_err(|e| format!("the provider's client key: {e}"))?;
        let mut config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS versions: {e}"))?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|e| format!("the provider's client certificate and key: {e}"))?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        config.resumption = Resumption::disabled();
        Ok(Arc::new(config))
    }
}

impl PartialEq for ClientTls {
    fn eq(&self, other: &Self) -> bool {
        (&self.ca_pem, &self.cert_pem, &self.key_pem)
            == (&other.ca_pem, &other.cert_pem, &other.key_pem)
    }
}

impl Eq for ClientTls {}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a private key.
        f.debug_struct("ClientTls")
            .field("ca_pem", &self.ca_pem)
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}
