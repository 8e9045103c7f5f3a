//! The network front door: a kube-rs client built from the generated
//! kubeconfig (as the provider binary does), and the `test-apiserver` binary.

use std::process::Stdio;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use test_apiserver::TestApiServer;
use tokio::io::{AsyncBufReadExt, BufReader};

async fn client_from(path: &std::path::Path) -> kube::Client {
    let kubeconfig = Kubeconfig::read_from(path).expect("read kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("config from kubeconfig");
    kube::Client::try_from(config).expect("client")
}

fn configmap(name: &str) -> ConfigMap {
    serde_json::from_value(serde_json::json!({"metadata": {"name": name}, "data": {"k": "v"}}))
        .expect("configmap")
}

#[tokio::test]
async fn kube_client_from_written_kubeconfig_reaches_the_same_store() {
    let server = TestApiServer::new();
    let (address, task) = server.serve_http(0).await.expect("serve");
    assert!(address.ip().is_loopback());
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kubeconfig");
    TestApiServer::write_kubeconfig(&path, address).expect("write kubeconfig");
    let api: Api<ConfigMap> = Api::default_namespaced(client_from(&path).await);
    api.create(&PostParams::default(), &configmap("over-http"))
        .await
        .expect("create over HTTP");
    assert!(
        server
            .object("v1", "ConfigMap", Some("default"), "over-http")
            .is_some(),
        "visible in the store"
    );
    let in_process: Api<ConfigMap> = Api::default_namespaced(server.client());
    assert!(
        in_process.get("over-http").await.is_ok(),
        "visible through the in-process door"
    );
    task.abort();
}

#[tokio::test]
async fn binary_prints_its_address_and_writes_a_kubeconfig() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_test-apiserver"))
        .args(["--port", "0", "--kubeconfig-out"])
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn test-apiserver");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("address printed in time")
        .expect("read")
        .expect("a line");
    assert!(line.starts_with("listening on http://127.0.0.1:"), "{line}");
    let api: Api<ConfigMap> = Api::default_namespaced(client_from(&kubeconfig).await);
    api.create(&PostParams::default(), &configmap("a"))
        .await
        .expect("create");
    let list = api.list(&ListParams::default()).await.expect("list");
    assert_eq!(list.items.len(), 1);
    child.kill().await.expect("stop the server we started");
}

#[tokio::test]
async fn watch_over_http_streams_changes_made_in_process() {
    use futures::{StreamExt, TryStreamExt};
    use kube::runtime::{WatchStreamExt, watcher};

    let server = TestApiServer::new();
    let (address, task) = server.serve_http(0).await.expect("serve");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kubeconfig");
    TestApiServer::write_kubeconfig(&path, address).expect("write kubeconfig");
    let over_http: Api<ConfigMap> = Api::default_namespaced(client_from(&path).await);
    let mut events = watcher(over_http, watcher::Config::default())
        .applied_objects()
        .boxed();
    // Start the watcher (initial LIST, then WATCH) before the change.
    let first = tokio::spawn(async move {
        let first = events.try_next().await;
        (first, events)
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let in_process: Api<ConfigMap> = Api::default_namespaced(server.client());
    in_process
        .create(&PostParams::default(), &configmap("streamed"))
        .await
        .expect("create in-process");
    let (first, _events) = tokio::time::timeout(Duration::from_secs(5), first)
        .await
        .expect("event over HTTP in time")
        .expect("task");
    let cm = first.expect("watch").expect("stream open");
    assert_eq!(cm.metadata.name.as_deref(), Some("streamed"));
    task.abort();
}
