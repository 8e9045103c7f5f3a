//! Managed certificates against the in-process test API server: the CA and announcer Secrets
//! are created, adopted, repaired and renewed, two replicas agree on one CA, and the issued
//! material makes mutual TLS work (a tonic server from the announcer Secret accepts the
//! provider's published client certificate and refuses a client without one).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use clap::Parser;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{Api, Client};
use provider::certs::issue::{self, KeyedCert, Role};
use provider::certs::{self, ANNOUNCER_SERVER_NAME, ClientTls, TlsArgs};
use test_apiserver::TestApiServer;
use tokio::sync::watch;
use tokio::task::JoinHandle;

const NAMESPACE: &str = "kube-system";
const DAY: Duration = Duration::from_secs(86_400);
const WAIT: Duration = Duration::from_secs(20);

#[derive(Parser)]
struct Flags {
    #[command(flatten)]
    tls: TlsArgs,
}

/// A running certificate task and the receiver of what it publishes; aborted on drop.
struct Running {
    task: JoinHandle<()>,
    rx: watch::Receiver<Option<Arc<ClientTls>>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Running {
    fn start(client: &Client) -> Running {
        Self::start_with(client, &[])
    }

    fn start_with(client: &Client, flags: &[&str]) -> Running {
        let argv = std::iter::once("ferrolb-provider").chain(flags.iter().copied());
        let args = Flags::try_parse_from(argv).expect("test flags").tls;
        let (tx, rx) = watch::channel(None);
        let task = tokio::spawn(certs::run(client.clone(), NAMESPACE.into(), args, tx));
        Running { task, rx }
    }

    async fn published(&mut self) -> Arc<ClientTls> {
        let published = tokio::time::timeout(WAIT, self.rx.wait_for(Option::is_some))
            .await
            .expect("client certificate published in time")
            .expect("task alive");
        published.clone().expect("some")
    }
}

async fn secret(client: &Client, name: &str) -> Option<Secret> {
    let api: Api<Secret> = Api::namespaced(client.clone(), NAMESPACE);
    api.get_opt(name).await.expect("get Secret")
}

fn text(secret: &Secret, key: &str) -> String {
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .unwrap_or_else(|| panic!("key {key} present"));
    String::from_utf8(bytes.0.clone()).expect("UTF-8")
}

fn tls_secret(name: &str, cert: &KeyedCert, ca: Option<&KeyedCert>) -> Secret {
    let mut data = std::collections::BTreeMap::from([
        (
            "tls.crt".to_string(),
            ByteString(cert.cert_pem.clone().into_bytes()),
        ),
        (
            "tls.key".to_string(),
            ByteString(cert.key_pem.clone().into_bytes()),
        ),
    ]);
    if let Some(ca) = ca {
        data.insert(
            "ca.crt".into(),
            ByteString(ca.cert_pem.clone().into_bytes()),
        );
    }
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(NAMESPACE.into()),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(data),
        ..Default::default()
    }
}

/// Waits until the announcer Secret satisfies `done`.
async fn wait_announcer_secret(client: &Client, done: impl Fn(&Secret) -> bool) -> Secret {
    let start = std::time::Instant::now();
    loop {
        if let Some(s) = secret(client, "ferrolb-announcer-tls").await
            && done(&s)
        {
            return s;
        }
        assert!(
            start.elapsed() < WAIT,
            "announcer Secret not as expected in time"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn managed_mode_creates_both_secrets_chained_to_one_ca_and_a_restart_adopts_them() {
    let server = TestApiServer::new();
    let client = server.client();
    let mut first = Running::start(&client);
    let tls = first.published().await;

    let ca = secret(&client, "ferrolb-ca")
        .await
        .expect("CA Secret created");
    assert_eq!(ca.type_.as_deref(), Some("kubernetes.io/tls"));
    let ca_pem = text(&ca, "tls.crt");
    assert!(issue::inspect(&ca_pem, "CA").expect("CA").is_ca);
    assert_eq!(tls.ca_pem, ca_pem, "the client trusts the CA");
    assert!(
        issue::signed_by(&tls.cert_pem, &ca_pem),
        "client certificate from the CA"
    );

    let announcer = wait_announcer_secret(&client, |_| true).await;
    assert_eq!(announcer.type_.as_deref(), Some("kubernetes.io/tls"));
    assert!(issue::signed_by(&text(&announcer, "tls.crt"), &ca_pem));
    assert_eq!(text(&announcer, "ca.crt"), ca_pem);
    let info = issue::inspect(&text(&announcer, "tls.crt"), "server").expect("server cert");
    let validity = info
        .not_after
        .duration_since(SystemTime::now())
        .expect("future");
    assert!(validity > 89 * DAY && validity <= 90 * DAY, "{validity:?}");
    drop(first);

    // A restart (or the other replica) reads the same CA and leaves the Secrets alone.
    let versions = (
        ca.metadata.resource_version.clone(),
        announcer.metadata.resource_version.clone(),
    );
    let mut second = Running::start(&client);
    let tls2 = second.published().await;
    assert_eq!(tls2.ca_pem, ca_pem, "the existing CA is adopted");
    assert_ne!(
        tls2.cert_pem, tls.cert_pem,
        "each process has its own client key"
    );
    let again = (
        secret(&client, "ferrolb-ca")
            .await
            .and_then(|s| s.metadata.resource_version),
        secret(&client, "ferrolb-announcer-tls")
            .await
            .and_then(|s| s.metadata.resource_version),
    );
    assert_eq!(again, versions, "nothing rewritten");
}

#[tokio::test]
async fn a_ca_brought_by_the_operator_is_used_and_a_due_or_foreign_server_secret_reissued() {
    let server = TestApiServer::new();
    let client = server.client();
    let now = SystemTime::now();
    let own_ca = issue::new_ca(now - 100 * DAY, 3650 * DAY).expect("CA");
    server
        .seed(tls_secret("ferrolb-ca", &own_ca, None))
        .expect("seed CA");
    // Issued 80 days ago for 90 days: past two thirds.
    let due = issue::issue(
        &own_ca,
        "CA",
        Role::AnnouncerServer,
        now - 80 * DAY,
        90 * DAY,
    )
    .expect("due cert");
    server
        .seed(tls_secret("ferrolb-announcer-tls", &due, Some(&own_ca)))
        .expect("seed server Secret");

    let mut running = Running::start(&client);
    let tls = running.published().await;
    assert_eq!(tls.ca_pem, own_ca.cert_pem, "issued from the operator's CA");
    let renewed = wait_announcer_secret(&client, |s| text(s, "tls.crt") != due.cert_pem).await;
    assert!(issue::signed_by(
        &text(&renewed, "tls.crt"),
        &own_ca.cert_pem
    ));
    let info = issue::inspect(&text(&renewed, "tls.crt"), "server").expect("server cert");
    assert!(info.renew_at() > now + 50 * DAY, "a fresh certificate");
    let ca = secret(&client, "ferrolb-ca").await.expect("CA Secret");
    assert_eq!(
        text(&ca, "tls.crt"),
        own_ca.cert_pem,
        "the operator's CA is not touched"
    );
    assert!(ca.metadata.labels.unwrap_or_default().is_empty());
    drop(running);

    // A server Secret from another CA (e.g. left from a previous install) is replaced.
    let stranger = issue::new_ca(now, 3650 * DAY).expect("other CA");
    let foreign =
        issue::issue(&stranger, "CA", Role::AnnouncerServer, now, 90 * DAY).expect("cert");
    let api: Api<Secret> = Api::namespaced(client.clone(), NAMESPACE);
    api.delete("ferrolb-announcer-tls", &Default::default())
        .await
        .expect("delete");
    server
        .seed(tls_secret(
            "ferrolb-announcer-tls",
            &foreign,
            Some(&stranger),
        ))
        .expect("seed foreign");
    let mut running = Running::start(&client);
    running.published().await;
    let repaired = wait_announcer_secret(&client, |s| {
        issue::signed_by(&text(s, "tls.crt"), &own_ca.cert_pem)
    })
    .await;
    assert_eq!(text(&repaired, "ca.crt"), own_ca.cert_pem);
}

#[tokio::test]
async fn a_deleted_announcer_secret_is_recreated_at_the_next_recheck() {
    let server = TestApiServer::new();
    let client = server.client();
    let mut running = Running::start_with(&client, &["--cert-recheck-interval=200ms"]);
    let tls = running.published().await;
    let first = wait_announcer_secret(&client, |_| true).await;
    let api: Api<Secret> = Api::namespaced(client.clone(), NAMESPACE);
    api.delete("ferrolb-announcer-tls", &Default::default())
        .await
        .expect("delete");
    let recreated = wait_announcer_secret(&client, |s| s.metadata.uid != first.metadata.uid).await;
    assert!(issue::signed_by(&text(&recreated, "tls.crt"), &tls.ca_pem));
    assert_eq!(
        running.rx.borrow().as_ref().map(|t| t.cert_pem.clone()),
        Some(tls.cert_pem.clone()),
        "the client certificate is not re-issued for that"
    );
}

#[tokio::test]
async fn two_replicas_starting_together_agree_on_one_ca() {
    let server = TestApiServer::new();
    let client = server.client();
    let mut a = Running::start(&client);
    let mut b = Running::start(&client);
    let (ta, tb) = (a.published().await, b.published().await);
    assert_eq!(ta.ca_pem, tb.ca_pem);
    let ca = secret(&client, "ferrolb-ca").await.expect("CA");
    assert_eq!(text(&ca, "tls.crt"), ta.ca_pem);
    wait_announcer_secret(&client, |s| {
        issue::signed_by(&text(s, "tls.crt"), &ta.ca_pem)
    })
    .await;
}

#[tokio::test]
async fn the_issued_material_makes_mutual_tls_work() {
    use tonic::transport::{
        Certificate, ClientTlsConfig, Endpoint, Identity, Server, ServerTlsConfig,
    };
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    let server = TestApiServer::new();
    let client = server.client();
    let mut running = Running::start(&client);
    let tls = running.published().await;
    let announcer = wait_announcer_secret(&client, |_| true).await;

    // An announcer stand-in: TLS exactly from the mounted Secret's keys.
    let server_tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(
            text(&announcer, "tls.crt"),
            text(&announcer, "tls.key"),
        ))
        .client_ca_root(Certificate::from_pem(text(&announcer, "ca.crt")));
    let address = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    let (_reporter, health) = tonic_health::server::health_reporter();
    let grpc = tokio::spawn(
        Server::builder()
            .tls_config(server_tls)
            .expect("server TLS")
            .add_service(health)
            .serve(address),
    );

    let endpoint = |identity: bool| {
        let mut config = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&tls.ca_pem))
            .domain_name(ANNOUNCER_SERVER_NAME);
        if identity {
            config = config.identity(Identity::from_pem(&tls.cert_pem, &tls.key_pem));
        }
        Endpoint::from_shared(format!("https://{address}"))
            .expect("endpoint")
            .tls_config(config)
            .expect("client TLS")
            .connect_timeout(Duration::from_secs(2))
    };
    let check = |identity: bool| {
        let endpoint = endpoint(identity);
        async move {
            let channel = endpoint.connect().await.map_err(|e| e.to_string())?;
            HealthClient::new(channel)
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .map_err(|e| e.to_string())
        }
    };
    let start = std::time::Instant::now();
    let mut answer = check(true).await;
    while answer.is_err() && start.elapsed() < WAIT {
        tokio::time::sleep(Duration::from_millis(100)).await;
        answer = check(true).await;
    }
    assert!(
        answer.is_ok(),
        "the provider's certificate is accepted: {answer:?}"
    );
    assert!(
        check(false).await.is_err(),
        "a client without certificate is refused"
    );
    grpc.abort();
}
