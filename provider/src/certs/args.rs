//! Flags of the certificate task, flattened into the provider's arguments.

use std::path::PathBuf;
use std::time::Duration;

use clap::ValueEnum;

/// Where the provider's TLS material for the announcers comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TlsMode {
    /// The provider keeps a CA in a Secret and issues the announcers' and its own certificates.
    Managed,
    /// PEM files (cert-manager or your own PKI), re-read when they change.
    Files,
}

/// Certificates of the provider ↔ announcer mutual TLS (docs/certificates.md).
#[derive(Clone, Debug, clap::Args)]
pub struct TlsArgs {
    /// Where the announcer TLS material comes from: `managed` (the provider creates and
    /// rotates a CA and the certificates, in Secrets of --config-namespace) or `files`
    /// (--announcer-client-cert/--announcer-client-key/--announcer-ca, e.g. from cert-manager).
    #[arg(
        long = "announcer-tls",
        env = "FERROLB_ANNOUNCER_TLS",
        value_enum,
        default_value = "managed"
    )]
    pub announcer_tls: TlsMode,
    /// managed: Secret (type kubernetes.io/tls: tls.crt, tls.key) holding the CA; created if
    /// missing. Put your own CA there to have the provider issue from it.
    #[arg(
        long,
        env = "FERROLB_ANNOUNCER_CA_SECRET",
        default_value = "ferrolb-ca"
    )]
    pub announcer_ca_secret: String,
    /// managed: Secret the announcer DaemonSet mounts: tls.crt/tls.key (server certificate
    /// for DNS name ferrolb-announcer) and ca.crt (the CA that client certificates must chain to).
    #[arg(
        long,
        env = "FERROLB_ANNOUNCER_TLS_SECRET",
        default_value = "ferrolb-announcer-tls"
    )]
    pub announcer_tls_secret: String,
    /// managed: validity in days of the announcer server and provider client certificates;
    /// each is replaced after two thirds of it.
    #[arg(
        long,
        env = "FERROLB_CERT_VALIDITY_DAYS",
        default_value_t = 90,
        value_parser = clap::value_parser!(u32).range(1..=3650)
    )]
    pub cert_validity_days: u32,
    /// managed: validity in days of a CA the provider creates (replaced after two thirds of
    /// it; a CA it did not create is never replaced).
    #[arg(
        long,
        env = "FERROLB_CA_VALIDITY_DAYS",
        default_value_t = 3650,
        value_parser = clap::value_parser!(u32).range(1..=36500)
    )]
    pub ca_validity_days: u32,
    /// files: PEM client certificate (chain) the provider presents to announcers.
    #[arg(
        long,
        env = "FERROLB_ANNOUNCER_CLIENT_CERT",
        required_if_eq("announcer_tls", "files")
    )]
    pub announcer_client_cert: Option<PathBuf>,
    /// files: PEM private key of --announcer-client-cert.
    #[arg(
        long,
        env = "FERROLB_ANNOUNCER_CLIENT_KEY",
        required_if_eq("announcer_tls", "files")
    )]
    pub announcer_client_key: Option<PathBuf>,
    /// files: PEM CA bundle the announcers' server certificates must chain to.
    #[arg(
        long,
        env = "FERROLB_ANNOUNCER_CA",
        required_if_eq("announcer_tls", "files")
    )]
    pub announcer_ca: Option<PathBuf>,
    /// How often the Secrets (managed) or files (files) are re-read even when nothing is
    /// due, to repair a deleted Secret or pick up rotated files (e.g. 30s, 1m).
    #[arg(
        long,
        env = "FERROLB_CERT_RECHECK_INTERVAL",
        default_value = "1m",
        value_parser = crate::args::parse_duration
    )]
    pub cert_recheck_interval: Duration,
}

const DAY: Duration = Duration::from_secs(86_400);

impl TlsArgs {
    /// Validity of leaf certificates.
    pub fn cert_validity(&self) -> Duration {
        DAY * self.cert_validity_days
    }

    /// Validity of a created CA.
    pub fn ca_validity(&self) -> Duration {
        DAY * self.ca_validity_days
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        tls: TlsArgs,
    }

    #[test]
    fn defaults_are_managed_with_ninety_day_leaves() {
        let args = Wrapper::try_parse_from(["p"]).expect("parse").tls;
        assert_eq!(args.announcer_tls, TlsMode::Managed);
        assert_eq!(args.announcer_ca_secret, "ferrolb-ca");
        assert_eq!(args.announcer_tls_secret, "ferrolb-announcer-tls");
        assert_eq!(args.cert_validity(), DAY * 90);
        assert_eq!(args.ca_validity(), DAY * 3650);
    }

    #[test]
    fn files_mode_requires_the_three_files() {
        assert!(Wrapper::try_parse_from(["p", "--announcer-tls", "files"]).is_err());
        let args = Wrapper::try_parse_from([
            "p",
            "--announcer-tls=files",
            "--announcer-client-cert=/c",
            "--announcer-client-key=/k",
            "--announcer-ca=/ca",
        ])
        .expect("parse")
        .tls;
        assert_eq!(args.announcer_tls, TlsMode::Files);
    }
}
