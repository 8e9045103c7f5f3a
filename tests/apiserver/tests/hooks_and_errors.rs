//! Test hooks (fault injection, latency, request log, seeding) and the error
//! and discovery documents clients see, through raw HTTP requests on the
//! tower service and through kube-rs.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use test_apiserver::{FaultRule, TestApiServer};
use tower::ServiceExt;

/// Sends one raw request through the in-process service; returns (status, content type, JSON body).
async fn raw(
    server: &TestApiServer,
    method: Method,
    uri: &str,
    content_type: &str,
    body: &str,
) -> (u16, String, Value) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body.to_owned())))
        .expect("request");
    let response = server.service().oneshot(request).await.expect("infallible");
    let status = response.status().as_u16();
    let content = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, content, json)
}

#[tokio::test]
async fn malformed_json_is_400_with_a_status_body() {
    let server = TestApiServer::new();
    let (code, content, body) = raw(
        &server,
        Method::POST,
        "/api/v1/namespaces/default/configmaps",
        "application/json",
        "{not json",
    )
    .await;
    assert_eq!((code, content.as_str()), (400, "application/json"));
    assert_eq!(body["kind"], "Status");
    assert_eq!(body["reason"], "BadRequest");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("not valid JSON")),
        "{body}"
    );
}

#[tokio::test]
async fn unknown_resource_is_404_and_unknown_patch_type_is_415() {
    let server = TestApiServer::new();
    let (code, _, body) = raw(
        &server,
        Method::GET,
        "/api/v1/namespaces/default/widgets",
        "application/json",
        "",
    )
    .await;
    assert_eq!((code, body["reason"].as_str()), (404, Some("NotFound")));
    server
        .seed(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}))
        .expect("seed");
    let (code, _, body) = raw(
        &server,
        Method::PATCH,
        "/api/v1/namespaces/default/configmaps/a",
        "text/plain",
        "{}",
    )
    .await;
    assert_eq!(code, 415, "{body}");
}

#[tokio::test]
async fn discovery_documents_match_what_kubectl_parses() {
    let server = TestApiServer::new();
    let (_, _, core) = raw(&server, Method::GET, "/api/v1", "", "").await;
    assert_eq!(core["groupVersion"], "v1");
    let names: Vec<&str> = core["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["name"].as_str())
        .collect();
    for want in [
        "services",
        "services/status",
        "configmaps",
        "nodes",
        "nodes/status",
        "events",
        "namespaces",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let (_, _, groups) = raw(&server, Method::GET, "/apis", "", "").await;
    let group_names: Vec<&str> = groups["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| g["name"].as_str())
        .collect();
    assert_eq!(
        group_names,
        [
            "apiextensions.k8s.io",
            "apps",
            "coordination.k8s.io",
            "discovery.k8s.io",
            "events.k8s.io",
            "rbac.authorization.k8s.io"
        ]
    );
    let (_, _, list) = raw(
        &server,
        Method::GET,
        "/api/v1/namespaces/default/services",
        "",
        "",
    )
    .await;
    assert_eq!(
        (list["kind"].as_str(), list["apiVersion"].as_str()),
        (Some("ServiceList"), Some("v1"))
    );
    let (_, content, _) = raw(
        &server,
        Method::GET,
        "/api/v1/services?watch=true&timeoutSeconds=1",
        "",
        "",
    )
    .await;
    assert_eq!(
        content, "application/json",
        "watch streams are application/json"
    );
    let (code, _, version) = raw(&server, Method::GET, "/version", "", "").await;
    assert_eq!((code, version["major"].as_str()), (200, Some("1")));
}

#[tokio::test]
async fn injected_faults_fail_only_matching_requests_then_stop() {
    let server = TestApiServer::new();
    let api: Api<Service> = Api::namespaced(server.client(), "default");
    server
        .seed(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}}))
        .expect("seed");
    server.faults().inject(
        FaultRule::status(503)
            .times(2)
            .resource("services")
            .verb("patch"),
    );
    let patch = Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}}));
    for attempt in 0..2 {
        match api.patch("web", &PatchParams::default(), &patch).await {
            Err(kube::Error::Api(s)) => assert_eq!(
                (s.code, s.reason.as_str()),
                (503, "ServiceUnavailable"),
                "attempt {attempt}"
            ),
            other => panic!("attempt {attempt}: expected 503, got {other:?}"),
        }
        api.get("web").await.expect("gets are not affected");
    }
    api.patch("web", &PatchParams::default(), &patch)
        .await
        .expect("third patch succeeds");
    let statuses: Vec<(String, u16)> = server
        .request_log()
        .entries()
        .into_iter()
        .map(|r| (r.verb, r.status))
        .collect();
    assert_eq!(
        statuses,
        [
            ("patch", 503),
            ("get", 200),
            ("patch", 503),
            ("get", 200),
            ("patch", 200)
        ]
        .map(|(v, s)| (v.to_owned(), s))
    );
}

#[tokio::test]
async fn latency_delays_every_request() {
    let server = TestApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    server.faults().set_latency(Duration::from_millis(150));
    let start = Instant::now();
    let _ = api.get_opt("a").await.expect("get");
    assert!(
        start.elapsed() >= Duration::from_millis(150),
        "request answered before the injected latency"
    );
    server.faults().clear();
}

#[tokio::test]
async fn deletecollection_honours_label_selectors() {
    let server = TestApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    for (name, app) in [("a", "web"), ("b", "db"), ("c", "web")] {
        server
            .seed(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"app": app}}}))
            .expect("seed");
    }
    api.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("app=web"),
    )
    .await
    .expect("deletecollection");
    let left: Vec<String> = server
        .objects("v1", "ConfigMap")
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(left, ["b"]);
}

#[tokio::test]
async fn delete_precondition_mismatch_is_409() {
    let server = TestApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    server
        .seed(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}))
        .expect("seed");
    let dp = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: Some("not-the-uid".to_owned()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete("a", &dp).await {
        Err(kube::Error::Api(s)) => assert!(
            s.code == 409 && s.message.contains("Precondition failed: UID"),
            "{s:?}"
        ),
        other => panic!("expected 409, got {other:?}"),
    }
}

#[tokio::test]
async fn leases_support_optimistic_renewal() {
    let server = TestApiServer::new();
    let api: Api<Lease> = Api::namespaced(server.client(), "kube-system");
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": "ferrolb"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15},
    }))
    .expect("lease");
    let created = api
        .create(&PostParams::default(), &lease)
        .await
        .expect("create");
    let mut renewed = created.clone();
    if let Some(spec) = renewed.spec.as_mut() {
        spec.holder_identity = Some("b".to_owned());
    }
    api.replace("ferrolb", &PostParams::default(), &renewed)
        .await
        .expect("first writer wins");
    match api
        .replace("ferrolb", &PostParams::default(), &renewed)
        .await
    {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 409),
        other => {
            panic!("a second write with the same resourceVersion must conflict, got {other:?}")
        }
    }
}

#[tokio::test]
async fn broken_protobuf_is_400_and_cbor_is_415() {
    let server = TestApiServer::new();
    let (code, _, body) = raw(
        &server,
        Method::POST,
        "/api/v1/namespaces",
        "application/vnd.kubernetes.protobuf",
        "k8s\u{0}binary",
    )
    .await;
    assert_eq!(code, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("create Namespace")),
        "{body}"
    );
    let (code, _, body) = raw(
        &server,
        Method::POST,
        "/api/v1/namespaces",
        "application/cbor",
        "\u{a0}",
    )
    .await;
    assert_eq!(code, 415, "{body}");
}

#[tokio::test]
async fn accept_header_selects_table_or_partial_metadata() {
    let server = TestApiServer::new();
    server
        .seed(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}}))
        .expect("seed");
    let get = |accept: &'static str| {
        let request = Request::builder()
            .uri("/api/v1/namespaces/default/configmaps")
            .header("accept", accept)
            .body(Full::new(Bytes::new()))
            .expect("request");
        let service = server.service();
        async move {
            let response = service.oneshot(request).await.expect("infallible");
            let bytes = response
                .into_body()
                .collect()
                .await
                .expect("body")
                .to_bytes();
            serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null)
        }
    };
    let meta = get("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1").await;
    assert_eq!(meta["kind"], "PartialObjectMetadataList");
    assert_eq!(meta["items"][0]["kind"], "PartialObjectMetadata");
    assert!(meta["items"][0].get("data").is_none(), "metadata only");
    let table = get("application/json;as=Table;v=v1;g=meta.k8s.io,application/json").await;
    assert_eq!(table["kind"], "Table");
    assert_eq!(table["rows"][0]["cells"][0], "a");
    assert_eq!(table["rows"][0]["cells"][1], 1, "DATA column counts keys");
    let plain = get("application/json").await;
    assert_eq!(plain["kind"], "ConfigMapList");
}
