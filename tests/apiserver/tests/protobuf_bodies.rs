//! Protobuf request bodies recorded from kubectl v1.32 (`fixtures/kubectl-1.32/`)
//! POSTed to the server: each becomes the object kubectl meant, as JSON.

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use test_apiserver::TestApiServer;
use tower::ServiceExt;

async fn post_protobuf(server: &TestApiServer, uri: &str, fixture: &str) -> (u16, Value) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/kubectl-1.32")
        .join(fixture);
    let body = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let request = Request::builder()
        .method("POST")
        .uri(uri)
        .header("content-type", "application/vnd.kubernetes.protobuf")
        .header(
            "accept",
            "application/vnd.kubernetes.protobuf,application/json",
        )
        .body(Full::new(Bytes::from(body)))
        .expect("request");
    let response = server.service().oneshot(request).await.expect("infallible");
    let status = response.status().as_u16();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn kubectl_create_deployment_body_becomes_the_deployment() {
    let server = TestApiServer::new();
    let (code, created) = post_protobuf(
        &server,
        "/apis/apps/v1/namespaces/default/deployments?fieldManager=kubectl-create&fieldValidation=Strict",
        "create-deployment.pb",
    )
    .await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["apiVersion"], "apps/v1");
    assert_eq!(created["kind"], "Deployment");
    assert_eq!(created["metadata"]["name"], "cap");
    assert_eq!(created["metadata"]["labels"], json!({"app": "cap"}));
    assert_eq!(created["spec"]["replicas"], 2);
    assert_eq!(
        created["spec"]["selector"],
        json!({"matchLabels": {"app": "cap"}})
    );
    let template = &created["spec"]["template"];
    assert_eq!(template["metadata"], json!({"labels": {"app": "cap"}}));
    assert_eq!(
        template["spec"]["containers"],
        json!([{"name": "nginx", "image": "nginx:1.27", "ports": [{"containerPort": 80, "protocol": "TCP"}],
                "resources": {}, "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"}])
    );
    assert!(
        created.get("status").is_none_or(|s| s == &json!({})),
        "{created}"
    );
}

#[tokio::test]
async fn kubectl_create_secret_and_service_bodies_decode() {
    let server = TestApiServer::new();
    let (code, secret) = post_protobuf(
        &server,
        "/api/v1/namespaces/default/secrets",
        "create-secret-generic.pb",
    )
    .await;
    assert_eq!(code, 201, "{secret}");
    assert_eq!(secret["data"], json!({"user": "YWRtaW4="}));
    assert_eq!(secret["type"], "Opaque");
    let (code, service) = post_protobuf(
        &server,
        "/api/v1/namespaces/default/services",
        "create-service-clusterip.pb",
    )
    .await;
    assert_eq!(code, 201, "{service}");
    assert_eq!(service["spec"]["type"], "ClusterIP");
    assert_eq!(service["spec"]["selector"], json!({"app": "cap"}));
    assert_eq!(
        service["spec"]["ports"][0],
        json!({"name": "80-http", "port": 80, "targetPort": "http", "protocol": "TCP"})
    );
}
