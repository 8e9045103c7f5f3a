//! Decisions of managed mode, with no I/O: given the two Secrets as read and the time, what
//! to create, replace or keep, and when to look again.
//!
//! Rules (docs/certificates.md):
//! - CA Secret missing → create one. Present → use it if it holds a readable CA and key.
//!   A CA the provider created (label `app.kubernetes.io/managed-by: ferrolb-provider`) is
//!   replaced after two thirds of its validity; one it did not create (yours, cert-manager's)
//!   is never written, and an unusable one stops issuing until it is fixed.
//! - Announcer Secret → re-issued when missing, unreadable, not signed by the CA, carrying
//!   another `ca.crt`, or past two thirds of its validity; left alone when cert-manager owns
//!   it (two writers would fight).
//! - The provider's client certificate (memory only) → re-issued when the CA changed or at
//!   two thirds of its validity.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use super::CertsError;
use super::issue::{self, CertInfo, KeyedCert};

/// Secret key of the certificate (chain).
pub const TLS_CRT: &str = "tls.crt";
/// Secret key of the private key.
pub const TLS_KEY: &str = "tls.key";
/// Secret key of the CA that peers' certificates must chain to.
pub const CA_CRT: &str = "ca.crt";

/// A Secret as the plan sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretSnapshot {
    /// `data`, decoded.
    pub data: BTreeMap<String, Vec<u8>>,
    /// Created by the provider (label `app.kubernetes.io/managed-by: ferrolb-provider`).
    pub ours: bool,
    /// Owned by a cert-manager Certificate (annotation `cert-manager.io/certificate-name`).
    pub cert_manager: bool,
}

impl SecretSnapshot {
    fn text(&self, key: &str, what: &str) -> Result<&str, CertsError> {
        let bytes = self.data.get(key).ok_or_else(|| CertsError::Pem {
            what: format!("{what} key `{key}`"),
            reason: "missing".into(),
        })?;
        std::str::from_utf8(bytes).map_err(|_| CertsError::Pem {
            what: format!("{what} key `{key}`"),
            reason: "not UTF-8 PEM text".into(),
        })
    }
}

/// What to do about the CA Secret.
#[derive(Debug)]
pub enum CaPlan {
    /// Missing: create a fresh CA.
    Create,
    /// Ours and due (or broken): replace it with a fresh CA.
    Replace { reason: String },
    /// Use this CA; `renew_at` is set when it is ours and will be replaced then.
    Use {
        ca: KeyedCert,
        info: CertInfo,
        renew_at: Option<SystemTime>,
    },
    /// Not ours and not usable: nothing can be issued until someone fixes it.
    Unusable(CertsError),
}

/// Decides about the CA Secret; `what` names it (e.g. "Secret kube-system/ferrolb-ca").
pub fn plan_ca(secret: Option<&SecretSnapshot>, what: &str, now: SystemTime) -> CaPlan {
    let Some(secret) = secret else {
        return CaPlan::Create;
    };
    let read = || -> Result<(KeyedCert, CertInfo), CertsError> {
        let cert_pem = secret.text(TLS_CRT, what)?.to_string();
        let key_pem = secret.text(TLS_KEY, what)?.to_string();
        let info = issue::inspect(&cert_pem, &format!("{what} key `{TLS_CRT}`"))?;
        if !info.is_ca {
            return Err(CertsError::Pem {
                what: format!("{what} key `{TLS_CRT}`"),
                reason: "not a CA certificate (basicConstraints CA:TRUE is missing)".into(),
            });
        }
        if !issue::key_is_readable(&key_pem) {
            return Err(CertsError::Pem {
                what: format!("{what} key `{TLS_KEY}`"),
                reason: "not a PKCS#8 ECDSA/Ed25519 private key (BEGIN PRIVATE KEY); convert with `openssl pkcs8 -topk8 -nocrypt`".into(),
            });
        }
        Ok((KeyedCert { cert_pem, key_pem }, info))
    };
    match read() {
        Err(error) if secret.ours => CaPlan::Replace {
            reason: error.to_string(),
        },
        Err(error) => CaPlan::Unusable(error),
        Ok((_, info)) if secret.ours && now >= info.renew_at() => CaPlan::Replace {
            reason: format!("{what}: the CA is past two thirds of its validity"),
        },
        Ok((_, info)) if now >= info.not_after => CaPlan::Unusable(CertsError::Pem {
            what: format!("{what} key `{TLS_CRT}`"),
            reason: "the CA certificate has expired; replace it (docs/certificates.md)".into(),
        }),
        Ok((ca, info)) => CaPlan::Use {
            ca,
            info,
            renew_at: secret.ours.then(|| info.renew_at()),
        },
    }
}

/// What to do about the announcer Secret.
#[derive(Debug, PartialEq, Eq)]
pub enum ServerPlan {
    /// Current; look again at `renew_at`.
    Keep { renew_at: SystemTime },
    /// (Re)issue it, for this reason (logged).
    Issue { reason: String },
    /// Someone else (cert-manager) owns it; leave it.
    Foreign,
}

/// Decides about the announcer Secret given the CA in use.
pub fn plan_server(
    secret: Option<&SecretSnapshot>,
    what: &str,
    ca: &KeyedCert,
    now: SystemTime,
) -> ServerPlan {
    let Some(secret) = secret else {
        return ServerPlan::Issue {
            reason: "it does not exist".into(),
        };
    };
    if secret.cert_manager {
        return ServerPlan::Foreign;
    }
    let check = || -> Result<SystemTime, String> {
        let cert = secret.text(TLS_CRT, what).map_err(|e| e.to_string())?;
        let key = secret.text(TLS_KEY, what).map_err(|e| e.to_string())?;
        let ca_crt = secret.text(CA_CRT, what).map_err(|e| e.to_string())?;
        let info =
            issue::inspect(cert, &format!("{what} key `{TLS_CRT}`")).map_err(|e| e.to_string())?;
        if !issue::signed_by(cert, &ca.cert_pem) {
            return Err(format!(
                "{what} key `{TLS_CRT}` is not signed by the current CA"
            ));
        }
        if ca_crt.trim() != ca.cert_pem.trim() {
            return Err(format!("{what} key `{CA_CRT}` is not the current CA"));
        }
        if !issue::key_is_readable(key) {
            return Err(format!(
                "{what} key `{TLS_KEY}` is not a readable private key"
            ));
        }
        if now >= info.renew_at() {
            return Err(format!(
                "{what}: the certificate is past two thirds of its validity"
            ));
        }
        Ok(info.renew_at())
    };
    match check() {
        Ok(renew_at) => ServerPlan::Keep { renew_at },
        Err(reason) => ServerPlan::Issue { reason },
    }
}

/// Whether the provider's in-memory client certificate must be (re)issued.
pub fn client_due(current: Option<(&str, SystemTime)>, ca: &KeyedCert, now: SystemTime) -> bool {
    match current {
        None => true,
        Some((ca_pem, renew_at)) => ca_pem != ca.cert_pem || now >= renew_at,
    }
}

/// Validity of a leaf issued now: the wanted one, cut to the CA's own end.
pub fn leaf_validity(ca: &CertInfo, now: SystemTime, wanted: Duration) -> Duration {
    let left = ca.not_after.duration_since(now).unwrap_or_default();
    wanted.min(left)
}

/// When the loop should look again: the earliest renewal point, but no later than
/// `now + recheck` (a deleted Secret is then repaired within `recheck`).
pub fn next_wake(
    now: SystemTime,
    recheck: Duration,
    renewals: impl IntoIterator<Item = SystemTime>,
) -> SystemTime {
    renewals
        .into_iter()
        .map(|at| at.max(now))
        .fold(now + recheck, SystemTime::min)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::issue::Role;

    const DAY: Duration = Duration::from_secs(86_400);
    const CA_WHAT: &str = "Secret kube-system/ferrolb-ca";
    const SERVER_WHAT: &str = "Secret kube-system/ferrolb-announcer-tls";

    fn at(days: u32) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000) + DAY * days
    }

    fn ca_secret(ca: &KeyedCert, ours: bool) -> SecretSnapshot {
        SecretSnapshot {
            data: BTreeMap::from([
                (TLS_CRT.into(), ca.cert_pem.clone().into_bytes()),
                (TLS_KEY.into(), ca.key_pem.clone().into_bytes()),
            ]),
            ours,
            cert_manager: false,
        }
    }

    fn server_secret(ca: &KeyedCert, issued: u32, validity: Duration) -> SecretSnapshot {
        let server =
            issue::issue(ca, "ca", Role::AnnouncerServer, at(issued), validity).expect("issue");
        SecretSnapshot {
            data: BTreeMap::from([
                (TLS_CRT.into(), server.cert_pem.into_bytes()),
                (TLS_KEY.into(), server.key_pem.into_bytes()),
                (CA_CRT.into(), ca.cert_pem.clone().into_bytes()),
            ]),
            ours: true,
            cert_manager: false,
        }
    }

    fn use_ca(plan: CaPlan) -> (KeyedCert, Option<SystemTime>) {
        match plan {
            CaPlan::Use { ca, renew_at, .. } => (ca, renew_at),
            other => panic!("expected Use, got {other:?}"),
        }
    }

    #[test]
    fn a_missing_ca_is_created() {
        assert!(matches!(plan_ca(None, CA_WHAT, at(0)), CaPlan::Create));
    }

    #[test]
    fn our_ca_is_used_until_two_thirds_then_replaced() {
        let ca = issue::new_ca(at(0), 300 * DAY).expect("ca");
        let (used, renew_at) = use_ca(plan_ca(Some(&ca_secret(&ca, true)), CA_WHAT, at(150)));
        assert_eq!(used, ca);
        assert!(renew_at.is_some_and(|r| r > at(199) && r < at(201)));
        assert!(matches!(
            plan_ca(Some(&ca_secret(&ca, true)), CA_WHAT, at(201)),
            CaPlan::Replace { .. }
        ));
    }

    #[test]
    fn a_ca_brought_by_the_operator_is_never_replaced() {
        let ca = issue::new_ca(at(0), 300 * DAY).expect("ca");
        let (_, renew_at) = use_ca(plan_ca(Some(&ca_secret(&ca, false)), CA_WHAT, at(250)));
        assert_eq!(renew_at, None);
        let CaPlan::Unusable(error) = plan_ca(Some(&ca_secret(&ca, false)), CA_WHAT, at(301))
        else {
            panic!("an expired foreign CA is unusable");
        };
        assert!(error.to_string().contains("has expired"));
        let mut broken = ca_secret(&ca, false);
        broken.data.remove(TLS_KEY);
        let CaPlan::Unusable(error) = plan_ca(Some(&broken), CA_WHAT, at(1)) else {
            panic!("a foreign CA without key is unusable");
        };
        assert_eq!(
            error.to_string(),
            "Secret kube-system/ferrolb-ca key `tls.key`: missing"
        );
    }

    #[test]
    fn a_leaf_certificate_is_not_accepted_as_ca() {
        let ca = issue::new_ca(at(0), 300 * DAY).expect("ca");
        let leaf = issue::issue(&ca, "ca", Role::ProviderClient, at(0), DAY).expect("leaf");
        let CaPlan::Unusable(error) = plan_ca(Some(&ca_secret(&leaf, false)), CA_WHAT, at(0))
        else {
            panic!("a leaf is no CA");
        };
        assert!(
            error.to_string().contains("not a CA certificate"),
            "{error}"
        );
    }

    #[test]
    fn the_server_secret_is_kept_while_current() {
        let ca = issue::new_ca(at(0), 3650 * DAY).expect("ca");
        let secret = server_secret(&ca, 0, 90 * DAY);
        let ServerPlan::Keep { renew_at } = plan_server(Some(&secret), SERVER_WHAT, &ca, at(30))
        else {
            panic!("current certificate kept");
        };
        assert!(renew_at > at(59) && renew_at < at(61));
    }

    #[test]
    fn the_server_secret_is_reissued_when_missing_due_or_from_another_ca() {
        let ca = issue::new_ca(at(0), 3650 * DAY).expect("ca");
        let other = issue::new_ca(at(0), 3650 * DAY).expect("other");
        let reason = |plan| match plan {
            ServerPlan::Issue { reason } => reason,
            other => panic!("expected Issue, got {other:?}"),
        };
        assert_eq!(
            reason(plan_server(None, SERVER_WHAT, &ca, at(0))),
            "it does not exist"
        );
        let current = server_secret(&ca, 0, 90 * DAY);
        assert!(
            reason(plan_server(Some(&current), SERVER_WHAT, &ca, at(61))).contains("two thirds")
        );
        let foreign = server_secret(&other, 0, 90 * DAY);
        assert!(
            reason(plan_server(Some(&foreign), SERVER_WHAT, &ca, at(1)))
                .contains("not signed by the current CA")
        );
        let mut stale_ca = current.clone();
        stale_ca
            .data
            .insert(CA_CRT.into(), other.cert_pem.clone().into_bytes());
        assert!(
            reason(plan_server(Some(&stale_ca), SERVER_WHAT, &ca, at(1)))
                .contains("`ca.crt` is not the current CA")
        );
        let mut no_key = current;
        no_key.data.remove(TLS_KEY);
        assert!(
            reason(plan_server(Some(&no_key), SERVER_WHAT, &ca, at(1)))
                .contains("`tls.key`: missing")
        );
    }

    #[test]
    fn a_cert_manager_secret_is_left_alone() {
        let ca = issue::new_ca(at(0), 3650 * DAY).expect("ca");
        let other = issue::new_ca(at(0), 3650 * DAY).expect("other");
        let mut secret = server_secret(&other, 0, 90 * DAY);
        secret.cert_manager = true;
        assert_eq!(
            plan_server(Some(&secret), SERVER_WHAT, &ca, at(1)),
            ServerPlan::Foreign
        );
    }

    #[test]
    fn the_client_certificate_follows_the_ca_and_its_renewal_point() {
        let ca = issue::new_ca(at(0), 3650 * DAY).expect("ca");
        assert!(client_due(None, &ca, at(0)));
        assert!(!client_due(Some((&ca.cert_pem, at(60))), &ca, at(59)));
        assert!(client_due(Some((&ca.cert_pem, at(60))), &ca, at(60)));
        assert!(client_due(Some(("another CA", at(60))), &ca, at(1)));
    }

    #[test]
    fn leaves_never_outlive_the_ca_and_wakes_are_bounded() {
        let info = CertInfo {
            not_before: at(0),
            not_after: at(100),
            is_ca: true,
        };
        assert_eq!(leaf_validity(&info, at(10), 30 * DAY), 30 * DAY);
        assert_eq!(leaf_validity(&info, at(80), 30 * DAY), 20 * DAY);
        let minute = Duration::from_secs(60);
        assert_eq!(next_wake(at(0), minute, [at(5)]), at(0) + minute);
        let soon = at(0) + Duration::from_secs(10);
        assert_eq!(next_wake(at(0), minute, [at(5), soon]), soon);
        assert_eq!(next_wake(at(1), minute, [at(0)]), at(1));
    }
}
