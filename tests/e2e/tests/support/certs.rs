//! TLS material for the provider ↔ announcer gRPC link, in "bring your own CA" form
//! (`--announcer-tls=files`): one CA, a server certificate for the name the provider
//! verifies (`ferrolb-announcer`, whatever IP it dials) shared by every announcer, and a
//! client certificate for the provider. Written as PEM files into the run's directory.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};

/// The DNS name in the announcers' server certificate.
pub const ANNOUNCER_SERVER_NAME: &str = "ferrolb-announcer";

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
