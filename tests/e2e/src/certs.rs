//! TLS material for the provider ↔ announcer gRPC link, two ways:
//! - "bring your own CA" (`--announcer-tls=files`): [`write_pki`] makes one CA, a server
//!   certificate for the name the provider verifies (`ferrolb-announcer`, whatever IP it
//!   dials) shared by every announcer, and a client certificate for the provider;
//! - provider-managed (`--announcer-tls=managed`): the provider creates Secret
//!   `kube-system/ferrolb-announcer-tls` and [`write_announcer_tls_from_secret`] plays
//!   kubelet, writing its keys where the announcers read them.
//!
//! Either way the announcers read PEM files from the run's directory.

use std::path::{Path, PathBuf};

use super::kube::Kubectl;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};

/// The DNS name in the announcers' server certificate.
pub const ANNOUNCER_SERVER_NAME: &str = "ferrolb-announcer";

/// Who makes the announcers' certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnouncerTlsMode {
    /// The harness's own CA, handed to the provider as files.
    Files,
    /// The provider's Secret `kube-system/ferrolb-announcer-tls`.
    Managed,
}

/// Writes `tls.crt`, `tls.key` and `ca.crt` of Secret `kube-system/ferrolb-announcer-tls`
/// to the paths in `tls` (Err while the Secret or a key is missing).
pub fn write_announcer_tls_from_secret(
    kubectl: &Kubectl,
    tls: &AnnouncerTls,
) -> Result<(), String> {
    for (key, path) in [
        ("tls.crt", &tls.cert),
        ("tls.key", &tls.key),
        ("ca.crt", &tls.client_ca),
    ] {
        let template = format!("--template={{{{index .data \"{key}\" | base64decode}}}}");
        let out = kubectl.run(
            &[
                "get",
                "secret",
                "ferrolb-announcer-tls",
                "-n",
                "kube-system",
                "-o",
                "go-template",
                &template,
            ],
            None,
        );
        let pem = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() || !pem.contains("-----BEGIN") {
            // Only kubectl's first stderr line: the rest would print the Secret's keys.
            let stderr = String::from_utf8_lossy(&out.stderr);
            let why = stderr.lines().next().unwrap_or("not a PEM block");
            return Err(format!(
                "Secret kube-system/ferrolb-announcer-tls key {key}: {why}"
            ));
        }
        std::fs::write(path, pem).map_err(|e| format!("write {}: {e}", path.display()))?;
    }
    Ok(())
}

/// Paths of the PEM files an announcer needs (`--tls-cert --tls-key --client-ca`).
#[derive(Debug, Clone)]
pub struct AnnouncerTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: PathBuf,
}

/// Paths of the PEM files the provider needs in files mode.
#[derive(Debug, Clone)]
pub struct ProviderTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

/// A CA and the two leaf certificates, as files in `dir`.
pub fn write_pki(dir: &Path) -> (AnnouncerTls, ProviderTls) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "ferrolb e2e CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key"))
        .expect("self-signed CA");
    let leaf = |name: &str, usage: ExtendedKeyUsagePurpose| {
        let mut params = CertificateParams::new(vec![name.to_string()]).expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &ca).expect("sign leaf");
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) =
        leaf(ANNOUNCER_SERVER_NAME, ExtendedKeyUsagePurpose::ServerAuth);
    let (client_cert, client_key) = leaf("ferrolb-provider", ExtendedKeyUsagePurpose::ClientAuth);
    let write = |name: &str, pem: &str| {
        let path = dir.join(name);
        std::fs::write(&path, pem).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    };
    let ca_path = write("ca.crt", &ca.pem());
    (
        AnnouncerTls {
            cert: write("announcer.crt", &server_cert),
            key: write("announcer.key", &server_key),
            client_ca: ca_path.clone(),
        },
        ProviderTls {
            cert: write("provider.crt", &client_cert),
            key: write("provider.key", &client_key),
            ca: ca_path,
        },
    )
}
