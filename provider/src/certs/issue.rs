//! Issuing and reading certificates, with no I/O: the CA, the announcers' server
//! certificate and the provider's client certificate (rcgen), and the few facts the plan
//! needs about an existing certificate (validity, CA flag, "signed by this CA"; x509-parser).
//!
//! Keys are ECDSA P-256 in PKCS#8 (`BEGIN PRIVATE KEY`), the only private-key encoding the
//! ring backend of rcgen can sign with; a CA brought by the operator must use it too.

use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use time::OffsetDateTime;

use super::CertsError;

/// The DNS name in every announcer's server certificate. The provider dials node IPs and
/// verifies this name instead, so one certificate serves every node.
pub const ANNOUNCER_SERVER_NAME: &str = "ferrolb-announcer";
/// Common name of the provider's client certificate.
pub const PROVIDER_CLIENT_NAME: &str = "ferrolb-provider";
/// Common name of a CA created by the provider.
pub const CA_NAME: &str = "ferrolb-ca";

/// How far back `notBefore` is set, so a node whose clock is slightly behind still accepts a
/// certificate issued a moment ago.
const BACKDATE: Duration = Duration::from_secs(5 * 60);

/// A certificate with its private key, both PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyedCert {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for KeyedCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a private key.
        f.debug_struct("KeyedCert")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

/// What a leaf certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The announcers' gRPC server: DNS SAN `ferrolb-announcer`, serverAuth.
    AnnouncerServer,
    /// The provider as the announcers' client: CN `ferrolb-provider`, clientAuth.
    ProviderClient,
}

/// The facts about a certificate that decide whether it is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertInfo {
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    pub is_ca: bool,
}

impl CertInfo {
    /// When the certificate should be replaced: after two thirds of its validity, the point
    /// cert-manager also uses by default.
    pub fn renew_at(&self) -> SystemTime {
        let lifetime = self
            .not_after
            .duration_since(self.not_before)
            .unwrap_or_default();
        self.not_before + lifetime * 2 / 3
    }
}

fn offset(at: SystemTime) -> OffsetDateTime {
    OffsetDateTime::from(at)
}

fn issue_error(what: &str) -> impl FnOnce(rcgen::Error) -> CertsError + '_ {
    move |source| CertsError::Issue {
        what: what.to_string(),
        source,
    }
}

fn params_for(name: &str, now: SystemTime, validity: Duration) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    params.not_before = offset(now.checked_sub(BACKDATE).unwrap_or(now));
    params.not_after = offset(now + validity);
    params
}

/// Creates a self-signed CA valid from now for `validity`.
pub fn new_ca(now: SystemTime, validity: Duration) -> Result<KeyedCert, CertsError> {
    let key = KeyPair::generate().map_err(issue_error("CA key"))?;
    let mut params = params_for(CA_NAME, now, validity);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key).map_err(issue_error("CA"))?;
    Ok(KeyedCert {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// Issues a leaf certificate for `role` from `ca`, valid from now for `validity`.
/// `ca_what` names where the CA came from, for the error.
pub fn issue(
    ca: &KeyedCert,
    ca_what: &str,
    role: Role,
    now: SystemTime,
    validity: Duration,
) -> Result<KeyedCert, CertsError> {
    let ca_key = KeyPair::from_pem(&ca.key_pem).map_err(|e| CertsError::Pem {
        what: format!("{ca_what} key `tls.key`"),
        reason: format!(
            "not a PKCS#8 ECDSA/Ed25519 private key (BEGIN PRIVATE KEY) ({e}); convert with `openssl pkcs8 -topk8 -nocrypt`"
        ),
    })?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem, ca_key).map_err(|e| CertsError::Pem {
        what: format!("{ca_what} key `tls.crt`"),
        reason: format!("not a CA certificate in PEM ({e})"),
    })?;
    let (name, usage) = match role {
        Role::AnnouncerServer => (ANNOUNCER_SERVER_NAME, ExtendedKeyUsagePurpose::ServerAuth),
        Role::ProviderClient => (PROVIDER_CLIENT_NAME, ExtendedKeyUsagePurpose::ClientAuth),
    };
    let mut params = params_for(name, now, validity);
    if role == Role::AnnouncerServer {
        params.subject_alt_names = vec![rcgen::SanType::DnsName(
            ANNOUNCER_SERVER_NAME
                .try_into()
                .map_err(issue_error("server name"))?,
        )];
    }
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().map_err(issue_error("certificate key"))?;
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(issue_error("certificate"))?;
    Ok(KeyedCert {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn parse<'a>(
    pem: &'a x509_parser::pem::Pem,
    what: &str,
) -> Result<x509_parser::certificate::X509Certificate<'a>, CertsError> {
    pem.parse_x509().map_err(|e| CertsError::Pem {
        what: what.to_string(),
        reason: format!("not an X.509 certificate ({e})"),
    })
}

fn first_pem(text: &str, what: &str) -> Result<x509_parser::pem::Pem, CertsError> {
    x509_parser::pem::parse_x509_pem(text.as_bytes())
        .map(|(_, pem)| pem)
        .map_err(|e| CertsError::Pem {
            what: what.to_string(),
            reason: format!("no PEM certificate block ({e})"),
        })
}

fn system_time(at: x509_parser::time::ASN1Time) -> SystemTime {
    let seconds = at.timestamp();
    match u64::try_from(seconds) {
        Ok(after) => SystemTime::UNIX_EPOCH + Duration::from_secs(after),
        Err(_) => SystemTime::UNIX_EPOCH - Duration::from_secs(seconds.unsigned_abs()),
    }
}

/// Reads the validity and CA flag of the first certificate in `cert_pem`; `what` names
/// where it came from (e.g. "Secret kube-system/ferrolb-ca key `tls.crt`").
pub fn inspect(cert_pem: &str, what: &str) -> Result<CertInfo, CertsError> {
    let pem = first_pem(cert_pem, what)?;
    let cert = parse(&pem, what)?;
    let validity = cert.validity();
    Ok(CertInfo {
        not_before: system_time(validity.not_before),
        not_after: system_time(validity.not_after),
        is_ca: cert.is_ca(),
    })
}

/// Whether the first certificate of `cert_pem` names `ca_pem`'s subject as issuer and
/// carries a signature made with its key. Unreadable input is "not signed".
pub fn signed_by(cert_pem: &str, ca_pem: &str) -> bool {
    let (Ok(leaf), Ok(ca)) = (first_pem(cert_pem, ""), first_pem(ca_pem, "")) else {
        return false;
    };
    let (Ok(leaf), Ok(ca)) = (leaf.parse_x509(), ca.parse_x509()) else {
        return false;
    };
    leaf.issuer() == ca.subject() && leaf.verify_signature(Some(ca.public_key())).is_ok()
}

/// Whether `key_pem` is a private key rcgen can read (and so one a TLS stack can use).
pub fn key_is_readable(key_pem: &str) -> bool {
    KeyPair::from_pem(key_pem).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    fn at(days: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000) + DAY * days as u32
    }

    #[test]
    fn issued_certificates_chain_to_their_ca_only() {
        let ca = new_ca(at(0), 3650 * DAY).expect("ca");
        let other = new_ca(at(0), 3650 * DAY).expect("other ca");
        let server = issue(&ca, "test CA", Role::AnnouncerServer, at(1), 90 * DAY).expect("server");
        let client = issue(&ca, "test CA", Role::ProviderClient, at(1), 90 * DAY).expect("client");
        assert!(signed_by(&server.cert_pem, &ca.cert_pem));
        assert!(signed_by(&client.cert_pem, &ca.cert_pem));
        assert!(!signed_by(&server.cert_pem, &other.cert_pem));
        assert!(!signed_by("garbage", &ca.cert_pem));
        assert!(key_is_readable(&server.key_pem));
    }

    #[test]
    fn validity_is_read_back_with_backdating_and_renewal_at_two_thirds() {
        let ca = new_ca(at(0), 3650 * DAY).expect("ca");
        assert!(inspect(&ca.cert_pem, "ca").expect("ca info").is_ca);
        let server = issue(&ca, "test CA", Role::AnnouncerServer, at(0), 90 * DAY).expect("server");
        let info = inspect(&server.cert_pem, "server").expect("info");
        assert!(!info.is_ca);
        assert_eq!(info.not_before, at(0) - BACKDATE);
        assert_eq!(info.not_after, at(90));
        let renew = info.renew_at();
        assert!(renew > at(59) && renew < at(61), "{renew:?}");
    }

    #[test]
    fn a_ca_key_that_is_not_pkcs8_is_named_in_the_error() {
        let mut ca = new_ca(at(0), 3650 * DAY).expect("ca");
        ca.key_pem = "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n".into();
        let error = issue(
            &ca,
            "Secret kube-system/ferrolb-ca",
            Role::ProviderClient,
            at(0),
            DAY,
        )
        .expect_err("unreadable key");
        let text = error.to_string();
        assert!(
            text.contains("Secret kube-system/ferrolb-ca key `tls.key`"),
            "{text}"
        );
        assert!(text.contains("PKCS#8"), "{text}");
    }

    #[test]
    fn garbage_is_reported_with_its_origin() {
        let error = inspect("not a pem", "Secret ns/x key `tls.crt`").expect_err("garbage");
        assert!(error.to_string().contains("Secret ns/x key `tls.crt`"));
    }
}
