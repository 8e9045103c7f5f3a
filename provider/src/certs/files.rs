//! Files mode: the client certificate, key and CA come from PEM files (typically a
//! cert-manager Secret mounted into the provider pod). They are re-read every
//! `--cert-recheck-interval` and published when their content changed, so cert-manager's
//! rotations reach new connections without a restart.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{CertsError, ClientTls, ClientTlsSender, TlsArgs, issue};

/// The three paths of files mode.
#[derive(Debug, Clone)]
struct Paths {
    cert: PathBuf,
    key: PathBuf,
    ca: PathBuf,
}

/// Runs files mode forever.
pub async fn run(args: TlsArgs, tx: ClientTlsSender) {
    let (Some(cert), Some(key), Some(ca)) = (
        args.announcer_client_cert.clone(),
        args.announcer_client_key.clone(),
        args.announcer_ca.clone(),
    ) else {
        // clap requires the three with --announcer-tls=files; nothing can be published.
        tracing::error!(
            "certificates: --announcer-tls=files needs --announcer-client-cert, --announcer-client-key and --announcer-ca"
        );
        return;
    };
    let paths = Paths { cert, key, ca };
    let mut ticker = tokio::time::interval(args.cert_recheck_interval);
    loop {
        ticker.tick().await;
        match load(&paths) {
            Ok(tls) => {
                let changed = tx.borrow().as_deref() != Some(&tls);
                if changed {
                    tracing::info!(cert = %paths.cert.display(), "certificates: loaded the client certificate files");
                    tx.send_replace(Some(Arc::new(tls)));
                }
            }
            Err(error) => tracing::warn!("certificates: {error}; keeping the previous material"),
        }
    }
}

fn read(flag: &'static str, path: &Path) -> Result<String, CertsError> {
    std::fs::read_to_string(path).map_err(|source| CertsError::File {
        flag,
        path: path.to_path_buf(),
        source,
    })
}

/// Reads and checks the three files.
fn load(paths: &Paths) -> Result<ClientTls, CertsError> {
    let tls = ClientTls::new(
        read("--announcer-ca", &paths.ca)?,
        read("--announcer-client-cert", &paths.cert)?,
        read("--announcer-client-key", &paths.key)?,
    );
    issue::inspect(
        &tls.ca_pem,
        &format!("--announcer-ca {}", paths.ca.display()),
    )?;
    issue::inspect(
        &tls.cert_pem,
        &format!("--announcer-client-cert {}", paths.cert.display()),
    )?;
    if !tls.key_pem.contains("PRIVATE KEY-----") {
        return Err(CertsError::Pem {
            what: format!("--announcer-client-key {}", paths.key.display()),
            reason: "no PEM private key block".into(),
        });
    }
    Ok(tls)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::certs::issue::Role;

    #[test]
    fn files_are_checked_and_errors_name_the_flag_and_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = SystemTime::now();
        let ca = issue::new_ca(now, Duration::from_secs(86_400)).expect("ca");
        let leaf = issue::issue(
            &ca,
            "ca",
            Role::ProviderClient,
            now,
            Duration::from_secs(3600),
        )
        .expect("leaf");
        let paths = Paths {
            cert: dir.path().join("tls.crt"),
            key: dir.path().join("tls.key"),
            ca: dir.path().join("ca.crt"),
        };
        let missing = load(&paths).expect_err("missing files");
        assert!(
            missing.to_string().starts_with("reading --announcer-ca "),
            "{missing}"
        );
        std::fs::write(&paths.ca, &ca.cert_pem).expect("write");
        std::fs::write(&paths.cert, &leaf.cert_pem).expect("write");
        std::fs::write(&paths.key, "garbage").expect("write");
        let bad_key = load(&paths).expect_err("bad key");
        assert!(
            bad_key.to_string().contains("--announcer-client-key"),
            "{bad_key}"
        );
        std::fs::write(&paths.key, &leaf.key_pem).expect("write");
        let tls = load(&paths).expect("load");
        assert_eq!(tls.cert_pem, leaf.cert_pem);
    }
}
