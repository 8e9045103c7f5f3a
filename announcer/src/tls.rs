//! TLS of the gRPC TCP listeners: mutual TLS whose material is re-read from disk while the
//! server runs, so a rotated Secret (the kubelet swaps the mounted files atomically) takes
//! effect without a restart and without dropping established connections.
//!
//! ```text
//!  --tls-cert/--tls-key/--client-ca ──(every --tls-reload-interval: changed bytes?)──┐
//!                                                                                   ▼
//!  TcpListener ─► accept ─► [task per connection] handshake with the current ServerConfig
//!                                   │ ok                     │ refused (no/foreign cert)
//!                                   ▼                        ▼
//!                     tonic serve_with_incoming          logged, closed
//! ```
//!
//! Every handshake requires a client certificate chaining to `--client-ca`
//! (`WebPkiClientVerifier`, which has no anonymous fallback unless asked for one). A set of
//! files that fails to load (e.g. read half-way through a swap) keeps the previous
//! configuration and is retried on the next tick.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::{CryptoProvider, ring};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

/// A peer that neither completes nor fails its handshake within this is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// TLS material of the server.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: PathBuf,
}

/// Why TLS material could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {flag} {path}: {source}")]
    Read {
        flag: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{flag} {path}: {reason}")]
    Pem {
        flag: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("TLS configuration from {cert} and {key}: {source}")]
    Config {
        cert: PathBuf,
        key: PathBuf,
        source: tokio_rustls::rustls::Error,
    },
    #[error("--client-ca {path}: {reason}")]
    ClientCa { path: PathBuf, reason: String },
}

/// The three files' contents, compared to notice a change.
type Contents = [Vec<u8>; 3];

fn read(flag: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        flag,
        path: path.to_path_buf(),
        source,
    })
}

fn read_all(files: &TlsFiles) -> Result<Contents, TlsError> {
    Ok([
        read("--tls-cert", &files.cert)?,
        read("--tls-key", &files.key)?,
        read("--client-ca", &files.client_ca)?,
    ])
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

/// Builds the server configuration: this certificate and key, client certificates
/// mandatory and verified against the CA bundle, ALPN h2 (what tonic clients require).
pub fn build_config(files: &TlsFiles, contents: &Contents) -> Result<ServerConfig, TlsError> {
    let [cert, key, client_ca] = contents;
    fn pem_error<'a>(
        flag: &'static str,
        path: &'a Path,
    ) -> impl FnOnce(tokio_rustls::rustls::pki_types::pem::Error) -> TlsError + 'a {
        move |e| TlsError::Pem {
            flag,
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
    }
    let chain = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_error("--tls-cert", &files.cert))?;
    if chain.is_empty() {
        return Err(TlsError::Pem {
            flag: "--tls-cert",
            path: files.cert.clone(),
            reason: "no CERTIFICATE block".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key).map_err(pem_error("--tls-key", &files.key))?;
    let mut roots = RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(client_ca) {
        let ca = ca.map_err(pem_error("--client-ca", &files.client_ca))?;
        roots.add(ca).map_err(|e| TlsError::ClientCa {
            path: files.client_ca.clone(),
            reason: e.to_string(),
        })?;
    }
    if roots.is_empty() {
        return Err(TlsError::ClientCa {
            path: files.client_ca.clone(),
            reason: "no CERTIFICATE block".into(),
        });
    }
    let provider = provider();
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| TlsError::ClientCa {
            path: files.client_ca.clone(),
            reason: e.to_string(),
        })?;
    let config_error = |source| TlsError::Config {
        cert: files.cert.clone(),
        key: files.key.clone(),
        source,
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(config_error)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(config_error)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// The server configuration in use and the file contents it was built from.
struct Loaded {
    contents: Contents,
    config: Arc<ServerConfig>,
}

/// A server configuration that follows its files.
pub struct ReloadingConfig {
    files: TlsFiles,
    current: RwLock<Loaded>,
    /// Contents that failed to load last, so one bad set is logged once.
    failed: RwLock<Option<Contents>>,
}

impl ReloadingConfig {
    /// Loads the files; failing here stops the server (nothing to fall back to).
    pub fn load(files: &TlsFiles) -> Result<Self, TlsError> {
        let contents = read_all(files)?;
        let config = Arc::new(build_config(files, &contents)?);
        Ok(Self {
            files: files.clone(),
            current: RwLock::new(Loaded { contents, config }),
            failed: RwLock::new(None),
        })
    }

    /// The configuration for the next handshake.
    pub fn config(&self) -> Arc<ServerConfig> {
        match self.current.read() {
            Ok(loaded) => Arc::clone(&loaded.config),
            Err(poisoned) => Arc::clone(&poisoned.into_inner().config),
        }
    }

    /// Re-reads the files; rebuilds when their bytes changed. Returns whether the
    /// configuration was replaced; on error the previous one stays.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let contents = read_all(&self.files)?;
        let unchanged = match self.current.read() {
            Ok(loaded) => loaded.contents == contents,
            Err(poisoned) => poisoned.into_inner().contents == contents,
        };
        if unchanged {
            return Ok(false);
        }
        let config = Arc::new(build_config(&self.files, &contents)?);
        let loaded = Loaded { contents, config };
        match self.current.write() {
            Ok(mut current) => *current = loaded,
            Err(poisoned) => *poisoned.into_inner() = loaded,
        }
        Ok(true)
    }

    /// Re-reads the files every `interval`, forever, logging changes and failures.
    pub async fn watch(self: Arc<Self>, interval: Duration) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match self.reload() {
                Ok(true) => {
                    tracing::info!(cert = %self.files.cert.display(), "TLS files changed: new connections use the new certificates");
                    self.set_failed(None);
                }
                Ok(false) => {}
                Err(error) => {
                    let contents = read_all(&self.files).ok();
                    let repeated = contents.is_some() && self.failed_is(contents.as_ref());
                    if !repeated {
                        tracing::warn!(
                            "TLS reload failed ({error}); keeping the previous certificates"
                        );
                    }
                    self.set_failed(contents);
                }
            }
        }
    }

    fn failed_is(&self, contents: Option<&Contents>) -> bool {
        self.failed
            .read()
            .map(|failed| failed.as_ref() == contents)
            .unwrap_or(false)
    }

    fn set_failed(&self, contents: Option<Contents>) {
        if let Ok(mut failed) = self.failed.write() {
            *failed = contents;
        }
    }
}

/// Accepts TCP connections on `listener` and yields those whose TLS handshake succeeded
/// with the configuration current at accept time. Handshakes run in their own tasks, so a
/// slow or hostile peer delays nobody else; the stream ends when its receiver is dropped.
pub fn incoming(
    listener: TcpListener,
    config: Arc<ReloadingConfig>,
) -> ReceiverStream<Result<TlsStream<TcpStream>, io::Error>> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors and the like: wait instead of spinning.
                        tracing::warn!("accepting a gRPC connection: {error}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                () = tx.closed() => return,
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = TlsAcceptor::from(config.config());
            let tx = tx.clone();
            tokio::spawn(async move {
                if let Some(stream) = handshake(acceptor, tcp, peer).await {
                    let _ = tx.send(Ok(stream)).await;
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

async fn handshake(
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
) -> Option<TlsStream<TcpStream>> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(error)) => {
            tracing::info!(%peer, "gRPC TLS handshake refused: {error}");
            None
        }
        Err(_) => {
            tracing::info!(%peer, "gRPC TLS handshake timed out");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa,
        KeyPair,
    };

    use super::*;

    fn ca() -> CertifiedIssuer<'static, KeyPair> {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("ca")
    }

    /// Writes a server certificate from a fresh CA and that CA as client CA.
    fn write_set(files: &TlsFiles) {
        let ca = ca();
        let mut params = CertificateParams::new(vec!["ferrolb-announcer".into()]).expect("params");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &ca).expect("sign");
        std::fs::write(&files.cert, cert.pem()).expect("write");
        std::fs::write(&files.key, key.serialize_pem()).expect("write");
        std::fs::write(&files.client_ca, ca.pem()).expect("write");
    }

    fn files(dir: &Path) -> TlsFiles {
        TlsFiles {
            cert: dir.join("tls.crt"),
            key: dir.join("tls.key"),
            client_ca: dir.join("ca.crt"),
        }
    }

    #[test]
    fn a_config_is_rebuilt_only_when_the_files_change() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = files(dir.path());
        write_set(&files);
        let reloading = ReloadingConfig::load(&files).expect("load");
        let before = reloading.config();
        assert_eq!(before.alpn_protocols, vec![b"h2".to_vec()]);
        assert!(!reloading.reload().expect("reload"));
        assert!(Arc::ptr_eq(&before, &reloading.config()));
        write_set(&files);
        assert!(reloading.reload().expect("reload"));
        assert!(!Arc::ptr_eq(&before, &reloading.config()));
    }

    #[test]
    fn a_bad_set_keeps_the_previous_config_and_names_the_flag() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = files(dir.path());
        write_set(&files);
        let reloading = ReloadingConfig::load(&files).expect("load");
        let before = reloading.config();
        std::fs::write(&files.client_ca, "no certificate here").expect("write");
        let error = reloading.reload().expect_err("no client CA");
        assert!(error.to_string().starts_with("--client-ca "), "{error}");
        assert!(Arc::ptr_eq(&before, &reloading.config()));
        // A key that does not belong to the certificate (a swap read half-way).
        write_set(&files);
        let other = KeyPair::generate().expect("key");
        std::fs::write(&files.key, other.serialize_pem()).expect("write");
        assert!(reloading.reload().is_err());
        assert!(Arc::ptr_eq(&before, &reloading.config()));
    }
}
