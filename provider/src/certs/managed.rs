//! Managed mode's I/O loop: reads the CA and announcer Secrets, applies [`plan`]'s
//! decisions, publishes the provider's client certificate, and sleeps until the next
//! renewal point or recheck.
//!
//! Two replicas may run this at once (every replica needs a client certificate; only the
//! leader dials announcers). Writes are conditional — create fails with 409 when the other
//! replica created first, update carries the resourceVersion that was read — and a lost race
//! only means re-reading and finding the winner's Secret current.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::PostParams;

use super::issue::{self, KeyedCert, Role};
use super::plan::{self, CA_CRT, CaPlan, SecretSnapshot, ServerPlan, TLS_CRT, TLS_KEY};
use super::{CertsError, ClientTls, ClientTlsSender, TlsArgs};

/// Label marking Secrets the provider created (and so may replace).
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "ferrolb-provider");
/// Annotation cert-manager puts on the Secrets of its Certificates.
pub const CERT_MANAGER_ANNOTATION: &str = "cert-manager.io/certificate-name";

/// Retry delays after a failed pass: doubles from the first to the last.
const BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(60));
/// Delay after a lost write race (the winner's Secret is re-read at once, nearly).
const AFTER_CONFLICT: Duration = Duration::from_millis(200);

/// State kept between passes.
struct Managed {
    secrets: Api<Secret>,
    namespace: String,
    args: TlsArgs,
    tx: ClientTlsSender,
    /// The published client certificate: the CA it chains to and its renewal point.
    client: Option<(Arc<ClientTls>, SystemTime)>,
}

/// Runs managed mode forever.
pub async fn run(client: kube::Client, namespace: String, args: TlsArgs, tx: ClientTlsSender) {
    let mut managed = Managed {
        secrets: Api::namespaced(client, &namespace),
        namespace,
        args,
        tx,
        client: None,
    };
    let mut backoff = BACKOFF.0;
    loop {
        let delay = match managed.pass(SystemTime::now()).await {
            Ok(wake) => {
                backoff = BACKOFF.0;
                wake.duration_since(SystemTime::now()).unwrap_or_default()
            }
            Err(error @ CertsError::Conflict { .. }) => {
                tracing::info!("certificates: {error}");
                AFTER_CONFLICT
            }
            Err(error) => {
                tracing::warn!("certificates: {error}; retrying in {backoff:?}");
                let delay = backoff;
                backoff = (backoff * 2).min(BACKOFF.1);
                delay
            }
        };
        tokio::time::sleep(delay).await;
    }
}

/// The plan's view of a Secret.
pub fn snapshot(secret: &Secret) -> SecretSnapshot {
    let data = secret
        .data
        .iter()
        .flatten()
        .map(|(key, value)| (key.clone(), value.0.clone()))
        .collect();
    let ours = secret
        .metadata
        .labels
        .as_ref()
        .and_then(|labels| labels.get(MANAGED_BY.0))
        .is_some_and(|value| value == MANAGED_BY.1);
    let cert_manager = secret
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|annotations| annotations.contains_key(CERT_MANAGER_ANNOTATION));
    SecretSnapshot {
        data,
        ours,
        cert_manager,
    }
}

impl Managed {
    fn what(&self, name: &str) -> String {
        format!("Secret {}/{name}", self.namespace)
    }

    /// One pass: returns when to run the next one.
    async fn pass(&mut self, now: SystemTime) -> Result<SystemTime, CertsError> {
        let (ca, ca_info, ca_renew) = self.ensure_ca(now).await?;
        let ca_what = self.what(&self.args.announcer_ca_secret);
        let validity = plan::leaf_validity(&ca_info, now, self.args.cert_validity());
        let server_renew = self.ensure_server(&ca, &ca_what, now, validity).await?;

        let current = self
            .client
            .as_ref()
            .map(|(tls, renew)| (tls.ca_pem.as_str(), *renew));
        if plan::client_due(current, &ca, now) {
            let leaf = issue::issue(&ca, &ca_what, Role::ProviderClient, now, validity)?;
            let renew_at =
                issue::inspect(&leaf.cert_pem, "the provider client certificate")?.renew_at();
            let tls = Arc::new(ClientTls::new(
                ca.cert_pem.clone(),
                leaf.cert_pem,
                leaf.key_pem,
            ));
            tracing::info!(renew_at = ?renew_at, "certificates: issued the provider client certificate");
            self.tx.send_replace(Some(Arc::clone(&tls)));
            self.client = Some((tls, renew_at));
        }
        let client_renew = self.client.as_ref().map(|(_, renew)| *renew);
        Ok(plan::next_wake(
            now,
            self.args.cert_recheck_interval,
            [ca_renew, server_renew, client_renew].into_iter().flatten(),
        ))
    }

    async fn get(&self, name: &str) -> Result<Option<Secret>, CertsError> {
        self.secrets
            .get_opt(name)
            .await
            .map_err(|source| CertsError::kube(format!("get {}", self.what(name)), source))
    }

    /// Writes `data` to Secret `name`: create when `existing` is None, else a conditional
    /// replace of the version read.
    async fn write(
        &self,
        name: &str,
        existing: Option<&Secret>,
        data: BTreeMap<String, ByteString>,
    ) -> Result<(), CertsError> {
        let mut labels = existing
            .and_then(|s| s.metadata.labels.clone())
            .unwrap_or_default();
        labels.insert(MANAGED_BY.0.into(), MANAGED_BY.1.into());
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(self.namespace.clone()),
                labels: Some(labels),
                annotations: existing.and_then(|s| s.metadata.annotations.clone()),
                resource_version: existing.and_then(|s| s.metadata.resource_version.clone()),
                ..Default::default()
            },
            // A Secret's type cannot change; keep an existing one (e.g. Opaque).
            type_: existing
                .and_then(|s| s.type_.clone())
                .or_else(|| Some("kubernetes.io/tls".into())),
            data: Some(data),
            ..Default::default()
        };
        let params = PostParams::default();
        let result = match existing {
            None => self.secrets.create(&params, &secret).await,
            Some(_) => self.secrets.replace(name, &params, &secret).await,
        };
        let verb = if existing.is_some() {
            "update"
        } else {
            "create"
        };
        result
            .map(drop)
            .map_err(|source| CertsError::kube(format!("{verb} {}", self.what(name)), source))
    }

    /// The CA to issue from, its facts and (when ours) its renewal point.
    async fn ensure_ca(
        &self,
        now: SystemTime,
    ) -> Result<(KeyedCert, issue::CertInfo, Option<SystemTime>), CertsError> {
        let name = &self.args.announcer_ca_secret;
        let what = self.what(name);
        let existing = self.get(name).await?;
        let replace_reason =
            match plan::plan_ca(existing.as_ref().map(snapshot).as_ref(), &what, now) {
                CaPlan::Use { ca, info, renew_at } => return Ok((ca, info, renew_at)),
                CaPlan::Unusable(error) => return Err(error),
                CaPlan::Create => None,
                CaPlan::Replace { reason } => Some(reason),
            };
        let ca = issue::new_ca(now, self.args.ca_validity())?;
        self.write(name, existing.as_ref(), tls_data(&ca, None))
            .await?;
        match replace_reason {
            Some(reason) => tracing::warn!(
                "certificates: replaced the CA in {what} ({reason}); announcers trust the new one once the kubelet updates their mounted Secret"
            ),
            None => tracing::info!("certificates: created a CA in {what}"),
        }
        let info = issue::inspect(&ca.cert_pem, &what)?;
        Ok((ca, info, Some(info.renew_at())))
    }

    /// Keeps the announcer Secret current; returns its renewal point (None when foreign).
    async fn ensure_server(
        &self,
        ca: &KeyedCert,
        ca_what: &str,
        now: SystemTime,
        validity: Duration,
    ) -> Result<Option<SystemTime>, CertsError> {
        let name = &self.args.announcer_tls_secret;
        let what = self.what(name);
        let existing = self.get(name).await?;
        match plan::plan_server(existing.as_ref().map(snapshot).as_ref(), &what, ca, now) {
            ServerPlan::Keep { renew_at } => Ok(Some(renew_at)),
            ServerPlan::Foreign => {
                tracing::warn!(
                    "certificates: {what} belongs to cert-manager; not writing it (use --announcer-tls=files with cert-manager)"
                );
                Ok(None)
            }
            ServerPlan::Issue { reason } => {
                let server = issue::issue(ca, ca_what, Role::AnnouncerServer, now, validity)?;
                self.write(name, existing.as_ref(), tls_data(&server, Some(ca)))
                    .await?;
                tracing::info!(
                    "certificates: issued the announcer certificate in {what} ({reason})"
                );
                Ok(Some(issue::inspect(&server.cert_pem, &what)?.renew_at()))
            }
        }
    }
}

/// `data` of a kubernetes.io/tls Secret, with `ca.crt` when given.
fn tls_data(cert: &KeyedCert, ca: Option<&KeyedCert>) -> BTreeMap<String, ByteString> {
    let mut data = BTreeMap::from([
        (
            TLS_CRT.to_string(),
            ByteString(cert.cert_pem.clone().into_bytes()),
        ),
        (
            TLS_KEY.to_string(),
            ByteString(cert.key_pem.clone().into_bytes()),
        ),
    ]);
    if let Some(ca) = ca {
        data.insert(
            CA_CRT.to_string(),
            ByteString(ca.cert_pem.clone().into_bytes()),
        );
    }
    data
}
