//! Custom resources checked like a real API server does, seen through kubectl
//! and kube-rs: schema validation with kube-apiserver's 422 messages and
//! causes, pruning and `fieldValidation`, defaults (on write and on read),
//! printer columns, short names and categories, the status subresource and
//! `generation`, and the versions of a multi-version CRD sharing storage.
//!
//! Without kubectl the kubectl test prints a message and passes, except under `CI=true`.

mod support;

use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};
use support::{cluster, rows, write};

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: testpools.example.ferrolb.io
spec:
  group: example.ferrolb.io
  scope: Cluster
  names: {plural: testpools, singular: testpool, kind: TestPool, listKind: TestPoolList, shortNames: [tpool], categories: [lbpools]}
  versions:
  - name: v1alpha1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns: &columns
    - {name: Mode, type: string, jsonPath: .spec.mode}
    - {name: First, type: string, jsonPath: ".spec.blocks[0].cidr"}
    - {name: Conflicting, type: string, jsonPath: ".status.conditions[?(@.type==\"Conflict\")].status"}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
    schema:
      openAPIV3Schema: &schema
        type: object
        properties:
          spec:
            type: object
            required: [blocks]
            properties:
              mode: {type: string, enum: [layer2, bgp], default: layer2}
              priority: {type: integer, minimum: 0, maximum: 100}
              interface: {type: string, pattern: '^[a-z0-9.]+$', maxLength: 15}
              blocks:
                type: array
                minItems: 1
                items:
                  type: object
                  properties:
                    cidr: {type: string, format: cidr}
          status:
            type: object
            properties:
              conditions:
                type: array
                items: {type: object, x-kubernetes-preserve-unknown-fields: true}
  - name: v1beta1
    served: true
    storage: false
    subresources: {status: {}}
    additionalPrinterColumns: *columns
    schema:
      openAPIV3Schema: *schema
  - name: v1
    served: false
    storage: false
    schema:
      openAPIV3Schema: *schema
"#;

const GOOD: &str = "
apiVersion: example.ferrolb.io/v1alpha1
kind: TestPool
metadata: {name: web}
spec:
  blocks: [{cidr: 198.51.100.0/28}]
status: {conditions: [{type: Conflict, status: 'True'}]}
";

const BAD: &str = "
apiVersion: example.ferrolb.io/v1alpha1
kind: TestPool
metadata: {name: bad}
spec:
  mode: vip
  priority: 500
  interface: Eth_0
  blocks: [{cidr: 198.51.100.0/33}]
";

const UNKNOWN: &str = "
apiVersion: example.ferrolb.io/v1alpha1
kind: TestPool
metadata: {name: odd}
spec:
  blocks: [{cidr: 203.0.113.0/28, color: red}]
  typo: 1
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_sees_schema_checks_columns_and_versions() {
    let Some(c) = cluster().await else {
        return;
    };
    let k = &c.kubectl;
    let dir = c.dir.path();
    let path = |name: &str, text: &str| write(dir, name, text).to_string_lossy().into_owned();
    k.ok(&["apply", "-f", &path("crd.yaml", CRD)]).await;
    let crds = rows(&k.ok(&["get", "crd"]).await);
    assert_eq!(crds[0], ["NAME", "CREATED", "AT"]);
    assert_eq!(crds[1][0], "testpools.example.ferrolb.io");
    let out = k.ok(&["apply", "-f", &path("good.yaml", GOOD)]).await;
    assert_eq!(out.trim(), "testpool.example.ferrolb.io/web created");

    // Defaults applied, status dropped on create (status subresource).
    let stored = c
        .server
        .object("example.ferrolb.io/v1alpha1", "TestPool", None, "web")
        .expect("stored");
    assert_eq!(stored["spec"]["mode"], "layer2");
    assert!(stored.get("status").is_none(), "{stored}");

    // Printer columns (of v1beta1, the preferred version: beta before alpha), short name and category.
    for what in ["testpools", "tpool", "lbpools"] {
        let table = rows(&k.ok(&["get", what]).await);
        assert_eq!(
            table[0],
            ["NAME", "MODE", "FIRST", "CONFLICTING", "AGE"],
            "get {what}"
        );
        assert_eq!(
            table[1][..4],
            ["web", "layer2", "198.51.100.0/28", "<none>"],
            "get {what}"
        );
    }

    // A bad object: 422 with every field named, as kube-apiserver words it.
    let err = k.fails(&["apply", "-f", &path("bad.yaml", BAD)]).await;
    for want in [
        r#"The TestPool "bad" is invalid"#,
        r#"* spec.blocks[0].cidr: Invalid value: "198.51.100.0/33": spec.blocks[0].cidr in body must be of type cidr: "198.51.100.0/33""#,
        r#"* spec.mode: Unsupported value: "vip": supported values: "layer2", "bgp""#,
        r#"* spec.priority: Invalid value: 500: spec.priority in body should be less than or equal to 100"#,
        r#"* spec.interface: Invalid value: "Eth_0": spec.interface in body should match '^[a-z0-9.]+$'"#,
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    assert!(
        c.server
            .object("example.ferrolb.io/v1alpha1", "TestPool", None, "bad")
            .is_none()
    );

    // Unknown fields: kubectl >= 1.25 asks for Strict (400); older ones get warnings and pruning.
    let out = k
        .run(&["apply", "-f", &path("unknown.yaml", UNKNOWN)])
        .await;
    if out.ok {
        assert!(
            out.stderr.contains(r#"unknown field "spec.typo""#),
            "{}",
            out.stderr
        );
        let odd = c
            .server
            .object("example.ferrolb.io/v1alpha1", "TestPool", None, "odd")
            .expect("created");
        assert_eq!(
            odd["spec"],
            json!({"blocks": [{"cidr": "203.0.113.0/28"}], "mode": "layer2"})
        );
    } else {
        assert!(
            out.stderr.contains(
                r#"TestPool in version "v1alpha1" cannot be handled as a TestPool: strict decoding error: unknown field "spec.blocks[0].color", unknown field "spec.typo""#
            ),
            "{}",
            out.stderr
        );
    }

    // Served versions share storage; an unserved one is not there.
    let other = k
        .ok(&[
            "get",
            "testpools.v1beta1.example.ferrolb.io",
            "web",
            "-o",
            "jsonpath={.apiVersion} {.spec.mode}",
        ])
        .await;
    assert_eq!(other, "example.ferrolb.io/v1beta1 layer2");
    let err = k
        .fails(&["get", "--raw", "/apis/example.ferrolb.io/v1/testpools"])
        .await;
    assert!(
        err.contains("NotFound") || err.contains("not found"),
        "{err}"
    );
}

fn testpools(client: kube::Client, version: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("example.ferrolb.io", version, "TestPool");
    Api::all_with(
        client,
        &ApiResource::from_gvk_with_plural(&gvk, "testpools"),
    )
}

/// The CRD as kube-rs tests seed it (two served versions, one schema).
fn crd_json() -> Value {
    let schema = json!({"type": "object", "properties": {
        "spec": {"type": "object", "required": ["blocks"], "properties": {
            "mode": {"type": "string", "enum": ["layer2", "bgp"], "default": "layer2"},
            "priority": {"type": "integer", "minimum": 0, "maximum": 100},
            "blocks": {"type": "array", "minItems": 1, "items": {"type": "object", "properties": {
                "cidr": {"type": "string", "format": "cidr"}}}}}},
        "status": {"type": "object", "properties": {"used": {"type": "integer"}}}}});
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "testpools.example.ferrolb.io"},
        "spec": {"group": "example.ferrolb.io", "scope": "Cluster",
            "names": {"plural": "testpools", "kind": "TestPool"},
            "versions": [
                {"name": "v1alpha1", "served": true, "storage": true, "subresources": {"status": {}},
                 "schema": {"openAPIV3Schema": schema}},
                {"name": "v1beta1", "served": true, "storage": false, "subresources": {"status": {}},
                 "schema": {"openAPIV3Schema": schema}}]}})
}

#[tokio::test]
async fn status_subresource_and_generation_follow_the_real_rules() {
    let server = test_apiserver::TestApiServer::new();
    server.seed(crd_json()).expect("crd");
    let client = server.client();
    let pools = testpools(client.clone(), "v1alpha1");
    let pool: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "example.ferrolb.io/v1alpha1", "kind": "TestPool",
        "metadata": {"name": "web"},
        "spec": {"blocks": [{"cidr": "192.0.2.0/28"}]},
        "status": {"used": 3}}))
    .expect("object");
    let created = pools
        .create(&PostParams::default(), &pool)
        .await
        .expect("create");
    assert_eq!(created.metadata.generation, Some(1));
    assert!(created.data.get("status").is_none(), "create drops status");

    // A status write changes status only, and not generation.
    let status = pools
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"mode": "bgp"}, "status": {"used": 4}})),
        )
        .await
        .expect("status patch");
    assert_eq!(status.data["status"]["used"], 4);
    assert_eq!(status.data["spec"]["mode"], "layer2");
    assert_eq!(status.metadata.generation, Some(1));

    // A main-resource write ignores status; a spec change bumps generation.
    let main = pools
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"mode": "bgp"}, "status": {"used": 99}})),
        )
        .await
        .expect("patch");
    assert_eq!(main.data["status"]["used"], 4);
    assert_eq!(main.data["spec"]["mode"], "bgp");
    assert_eq!(main.metadata.generation, Some(2));
    let labels = pools
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .expect("label");
    assert_eq!(labels.metadata.generation, Some(2), "metadata is not spec");

    // A status write is validated too.
    let err = pools
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"used": "many"}})),
        )
        .await
        .expect_err("invalid status");
    let kube::Error::Api(status) = err else {
        panic!("expected an API error, got {err:?}");
    };
    assert_eq!(status.code, 422);
    assert_eq!(
        status.message,
        r#"TestPool.example.ferrolb.io "web" is invalid: status.used: Invalid value: "string": status.used in body must be of type integer: "string""#
    );

    // The other served version reads and writes the same object.
    let beta = testpools(client, "v1beta1");
    let seen = beta.get("web").await.expect("v1beta1 get");
    assert_eq!(
        seen.types.as_ref().map(|t| t.api_version.as_str()),
        Some("example.ferrolb.io/v1beta1")
    );
    assert_eq!(seen.data["spec"]["mode"], "bgp");
    beta.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"priority": 7}})),
    )
    .await
    .expect("v1beta1 patch");
    let again = pools.get("web").await.expect("v1alpha1 get");
    assert_eq!(again.data["spec"]["priority"], 7);
    assert_eq!(again.metadata.generation, Some(3));
}

#[tokio::test]
async fn bad_objects_get_422_causes_naming_each_field() {
    let server = test_apiserver::TestApiServer::new();
    server.seed(crd_json()).expect("crd");
    let pools = testpools(server.client(), "v1alpha1");
    let pool: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "example.ferrolb.io/v1alpha1", "kind": "TestPool",
        "metadata": {"name": "bad"},
        "spec": {"blocks": [{"cidr": "192.0.2.0/28"}, {"cidr": "nonsense"}], "priority": -1}}))
    .expect("object");
    let err = pools
        .create(&PostParams::default(), &pool)
        .await
        .expect_err("invalid");
    let kube::Error::Api(status) = err else {
        panic!("expected an API error, got {err:?}");
    };
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        status.message,
        r#"TestPool.example.ferrolb.io "bad" is invalid: [spec.blocks[1].cidr: Invalid value: "nonsense": spec.blocks[1].cidr in body must be of type cidr: "nonsense", spec.priority: Invalid value: -1: spec.priority in body should be greater than or equal to 0]"#
    );
    // kube-rs' Status has no causes; read the raw body for them.
    let request = http::Request::builder()
        .method("POST")
        .uri("/apis/example.ferrolb.io/v1alpha1/testpools")
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(
            serde_json::to_vec(&pool).expect("json"),
        )))
        .expect("request");
    let response = tower::ServiceExt::oneshot(server.service(), request)
        .await
        .expect("infallible");
    assert_eq!(response.status().as_u16(), 422);
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .expect("body")
        .to_bytes();
    let status: Value = serde_json::from_slice(&body).expect("status json");
    assert_eq!(
        status["details"],
        json!({"name": "bad", "group": "example.ferrolb.io", "kind": "TestPool", "causes": [
            {"reason": "FieldValueTypeInvalid", "field": "spec.blocks[1].cidr",
             "message": "Invalid value: \"nonsense\": spec.blocks[1].cidr in body must be of type cidr: \"nonsense\""},
            {"reason": "FieldValueInvalid", "field": "spec.priority",
             "message": "Invalid value: -1: spec.priority in body should be greater than or equal to 0"}]})
    );
}
