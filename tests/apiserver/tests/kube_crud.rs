//! CRUD, list, selectors, paging and patches (server-side apply: kube_apply.rs) through kube-rs' `Api` over the
//! in-process tower service.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ConfigMap, LoadBalancerIngress, LoadBalancerStatus, Node, Service, ServicePort, ServiceSpec,
    ServiceStatus,
};
use kube::api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Error};
use serde_json::json;
use test_apiserver::TestApiServer;

fn configmap(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([("k".to_owned(), "v".to_owned())])),
        ..ConfigMap::default()
    }
}

fn service(name: &str) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            type_: Some("LoadBalancer".to_owned()),
            ports: Some(vec![ServicePort {
                port: 80,
                name: Some("http".to_owned()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

fn api_code(result: Result<impl std::fmt::Debug, Error>) -> u16 {
    match result {
        Err(Error::Api(status)) => status.code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn create_stamps_metadata_and_get_returns_it() {
    let server = TestApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let created = api
        .create(&PostParams::default(), &configmap("a", &[]))
        .await
        .expect("create");
    let meta = &created.metadata;
    assert_eq!(
        meta.namespace.as_deref(),
        Some("default"),
        "namespace stamped from the URL"
    );
    assert!(
        meta.uid.as_deref().is_some_and(|u| u.len() == 36),
        "uid {:?}",
        meta.uid
    );
    assert!(meta.creation_timestamp.is_some());
    assert_eq!(meta.generation, Some(1));
    let rv: u64 = meta
        .resource_version
        .as_deref()
        .and_then(|r| r.parse().ok())
        .expect("numeric resourceVersion");
    let fetched = api.get("a").await.expect("get");
    assert_eq!(fetched, created);

    let second = api
        .create(&PostParams::default(), &configmap("b", &[]))
        .await
        .expect("create b");
    let rv2: u64 = second
        .metadata
        .resource_version
        .as_deref()
        .and_then(|r| r.parse().ok())
        .expect("rv");
    assert!(
        rv2 > rv,
        "resourceVersion increases cluster-wide: {rv} then {rv2}"
    );
}

#[tokio::test]
async fn duplicate_create_is_409_already_exists() {
    let server = TestApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    api.create(&PostParams::default(), &configmap("a", &[]))
        .await
        .expect("create");
    match api
        .create(&PostParams::default(), &configmap("a", &[]))
        .await
    {
        Err(Error::Api(s)) => {
            assert_eq!((s.code, s.reason.as_str()), (409, "AlreadyExists"));
            assert!(
                s.message.contains("configmaps \"a\" already exists"),
                "{}",
                s.message
            );
        }
        other => panic!("expected 409, got {other:?}"),
    }
}

#[tokio::test]
async fn generate_name_makes_unique_names() {
    let server = TestApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let mut cm = configmap("", &[]);
    cm.metadata.name = None;
    cm.metadata.generate_name = Some("gen-".to_owned());
    let a = api.create(&PostParams::default(), &cm).await.expect("a");
    let b = api.create(&PostParams::default(), &cm).await.expect("b");
    let (na, nb) = (
        a.metadata.name.unwrap_or_default(),
        b.metadata.name.unwrap_or_default(),
    );
    assert!(na.starts_with("gen-") && na.len() == 9, "{na}");
    assert_ne!(na, nb);
}

#[tokio::test]
async fn missing_object_and_missing_namespace_are_404() {
    let server = TestApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    assert_eq!(api_code(api.get("nope").await), 404);
    let elsewhere: Api<ConfigMap> = Api::namespaced(server.client(), "no-such-ns");
    assert_eq!(
        api_code(
            elsewhere
                .create(&PostParams::default(), &configmap("a", &[]))
                .await
        ),
        404
    );
}

#[tokio::test]
async fn replace_with_stale_resource_version_is_409_conflict() {
    let server = TestApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let v1 = api
        .create(&PostParams::default(), &configmap("a", &[]))
        .await
        .expect("create");
    let mut fresh = v1.clone();
    fresh.data = Some(BTreeMap::from([("k".to_owned(), "v2".to_owned())]));
    let v2 = api
        .replace("a", &PostParams::default(), &fresh)
        .await
        .expect("replace with current rv");
    assert_ne!(v2.metadata.resource_version, v1.metadata.resource_version);
    let mut stale = v1.clone();
    stale.data = Some(BTreeMap::from([("k".to_owned(), "v3".to_owned())]));
    match api.replace("a", &PostParams::default(), &stale).await {
        Err(Error::Api(s)) => {
            assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
            assert!(
                s.message.contains("the object has been modified"),
                "{}",
                s.message
            );
        }
        other => panic!("expected 409, got {other:?}"),
    }
}

#[tokio::test]
async fn list_filters_by_label_and_field_selectors() {
    let server = TestApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    for (name, app) in [("a", "web"), ("b", "db"), ("c", "web")] {
        api.create(&PostParams::default(), &configmap(name, &[("app", app)]))
            .await
            .expect("create");
    }
    let names = |list: kube::core::ObjectList<ConfigMap>| -> Vec<String> {
        list.items
            .into_iter()
            .filter_map(|c| c.metadata.name)
            .collect()
    };
    let cases = [
        (ListParams::default().labels("app=web"), vec!["a", "c"]),
        (ListParams::default().labels("app!=web"), vec!["b"]),
        (ListParams::default().labels("app in (db,x)"), vec!["b"]),
        (
            ListParams::default().labels("app notin (db)"),
            vec!["a", "c"],
        ),
        (ListParams::default().labels("app"), vec!["a", "b", "c"]),
        (ListParams::default().labels("!app"), vec![]),
        (ListParams::default().fields("metadata.name=b"), vec!["b"]),
        (
            ListParams::default()
                .fields("metadata.name!=b")
                .labels("app=web"),
            vec!["a", "c"],
        ),
    ];
    for (params, want) in cases {
        let got = names(api.list(&params).await.expect("list"));
        assert_eq!(got, want, "{params:?}");
    }
    let list = api.list(&ListParams::default()).await.expect("list");
    assert!(
        list.metadata
            .resource_version
            .is_some_and(|rv| !rv.is_empty()),
        "list carries a resourceVersion"
    );
    assert_eq!(
        api_code(api.list(&ListParams::default().labels("app in (web")).await),
        400
    );
}

#[tokio::test]
async fn list_pages_with_limit_and_continue() {
    let server = TestApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    for i in 0..7 {
        api.create(&PostParams::default(), &configmap(&format!("cm{i}"), &[]))
            .await
            .expect("create");
    }
    let mut seen = Vec::new();
    let mut params = ListParams::default().limit(3);
    let mut pages = 0;
    loop {
        let page = api.list(&params).await.expect("page");
        pages += 1;
        seen.extend(page.items.into_iter().filter_map(|c| c.metadata.name));
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, (0..7).map(|i| format!("cm{i}")).collect::<Vec<_>>());
}

#[tokio::test]
async fn merge_json_and_strategic_patches_apply() {
    let server = TestApiServer::new();
    let api: Api<Service> = Api::namespaced(server.client(), "default");
    api.create(&PostParams::default(), &service("web"))
        .await
        .expect("create");
    let pp = PatchParams::default();

    let merged = api
        .patch(
            "web",
            &pp,
            &Patch::Merge(json!({"metadata": {"annotations": {"a": "1"}}})),
        )
        .await
        .expect("merge");
    assert_eq!(
        merged
            .metadata
            .annotations
            .unwrap_or_default()
            .get("a")
            .map(String::as_str),
        Some("1")
    );

    let json_patch: json_patch::Patch = serde_json::from_value(json!([
        {"op": "add", "path": "/metadata/labels", "value": {"x": "y"}}
    ]))
    .expect("patch doc");
    let patched = api
        .patch("web", &pp, &Patch::Json::<()>(json_patch))
        .await
        .expect("json patch");
    assert_eq!(
        patched
            .metadata
            .labels
            .unwrap_or_default()
            .get("x")
            .map(String::as_str),
        Some("y")
    );

    let strategic = api
        .patch(
            "web",
            &pp,
            &Patch::Strategic(json!({"spec": {"ports": [{"port": 443, "name": "https"}]}})),
        )
        .await
        .expect("strategic");
    let ports: Vec<i32> = strategic
        .spec
        .and_then(|s| s.ports)
        .unwrap_or_default()
        .iter()
        .map(|p| p.port)
        .collect();
    assert_eq!(
        ports,
        vec![80, 443],
        "strategic merge keeps the existing port"
    );
}

#[tokio::test]
async fn json_patch_with_failing_test_is_rejected() {
    let server = TestApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    api.create(&PostParams::default(), &configmap("a", &[]))
        .await
        .expect("create");
    let p: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/data/k", "value": "other"},
        {"op": "replace", "path": "/data/k", "value": "new"}
    ]))
    .expect("patch doc");
    assert_eq!(
        api_code(
            api.patch("a", &PatchParams::default(), &Patch::Json::<()>(p))
                .await
        ),
        422
    );
    assert_eq!(
        api.get("a")
            .await
            .expect("get")
            .data
            .unwrap_or_default()
            .get("k")
            .map(String::as_str),
        Some("v")
    );
}

#[tokio::test]
async fn generation_bumps_on_spec_changes_only() {
    let server = TestApiServer::new();
    let api: Api<Service> = Api::namespaced(server.client(), "default");
    api.create(&PostParams::default(), &service("web"))
        .await
        .expect("create");
    let pp = PatchParams::default();
    let labelled = api
        .patch(
            "web",
            &pp,
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .expect("label");
    assert_eq!(
        labelled.metadata.generation,
        Some(1),
        "metadata change keeps generation"
    );
    let respec = api
        .patch(
            "web",
            &pp,
            &Patch::Merge(json!({"spec": {"type": "ClusterIP"}})),
        )
        .await
        .expect("spec");
    assert_eq!(
        respec.metadata.generation,
        Some(2),
        "spec change bumps generation"
    );
    let noop = api
        .patch(
            "web",
            &pp,
            &Patch::Merge(json!({"spec": {"type": "ClusterIP"}})),
        )
        .await
        .expect("noop");
    assert_eq!(
        noop.metadata.resource_version, respec.metadata.resource_version,
        "a no-op patch writes nothing"
    );
}

#[tokio::test]
async fn status_subresource_writes_only_status() {
    let server = TestApiServer::new();
    let api: Api<Service> = Api::namespaced(server.client(), "default");
    api.create(&PostParams::default(), &service("web"))
        .await
        .expect("create");
    let ingress = ServiceStatus {
        load_balancer: Some(LoadBalancerStatus {
            ingress: Some(vec![LoadBalancerIngress {
                ip: Some("203.0.113.10".to_owned()),
                ..LoadBalancerIngress::default()
            }]),
        }),
        ..ServiceStatus::default()
    };
    let pp = PatchParams::default();
    // A status write through the main resource is ignored...
    let main = api
        .patch("web", &pp, &Patch::Merge(json!({"status": ingress})))
        .await
        .expect("main");
    assert!(
        main.status
            .and_then(|s| s.load_balancer)
            .and_then(|l| l.ingress)
            .is_none()
    );
    // ...and a spec write through /status is ignored too.
    let status = api
        .patch_status(
            "web",
            &pp,
            &Patch::Merge(json!({"status": ingress, "spec": {"type": "ClusterIP"}})),
        )
        .await
        .expect("status");
    let ip = status
        .status
        .and_then(|s| s.load_balancer)
        .and_then(|l| l.ingress)
        .and_then(|i| i.into_iter().next())
        .and_then(|i| i.ip);
    assert_eq!(ip.as_deref(), Some("203.0.113.10"));
    assert_eq!(
        status.spec.and_then(|s| s.type_).as_deref(),
        Some("LoadBalancer")
    );
}

#[tokio::test]
async fn delete_waits_for_finalizers() {
    let server = TestApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let mut cm = configmap("a", &[]);
    cm.metadata.finalizers = Some(vec!["ferrolb.io/test".to_owned()]);
    api.create(&PostParams::default(), &cm)
        .await
        .expect("create");
    api.delete("a", &DeleteParams::default())
        .await
        .expect("delete");
    let pending = api.get("a").await.expect("still there");
    assert!(pending.metadata.deletion_timestamp.is_some());
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("remove finalizer");
    assert_eq!(api_code(api.get("a").await), 404);
}

#[tokio::test]
async fn services_get_defaults_and_allocations_like_a_real_cluster() {
    let server = TestApiServer::new();
    let api: Api<Service> = Api::namespaced(server.client(), "default");
    let created = api
        .create(&PostParams::default(), &service("web"))
        .await
        .expect("create");
    let spec = created.spec.unwrap_or_default();
    assert_eq!(spec.ip_families, Some(vec!["IPv4".to_owned()]));
    assert_eq!(spec.ip_family_policy.as_deref(), Some("SingleStack"));
    assert!(
        spec.cluster_ip
            .as_deref()
            .is_some_and(|ip| ip.starts_with("10.96.")),
        "{:?}",
        spec.cluster_ip
    );
    let port = spec
        .ports
        .unwrap_or_default()
        .into_iter()
        .next()
        .unwrap_or_default();
    assert_eq!(port.protocol.as_deref(), Some("TCP"));
    assert!(
        port.node_port
            .is_some_and(|n| (30_000..=32_767).contains(&n)),
        "LoadBalancer ports get node ports"
    );
}

#[tokio::test]
async fn node_provider_id_is_set_once_then_refused_like_a_real_apiserver() {
    let server = TestApiServer::new();
    let api: Api<Node> = Api::all(server.client());
    let node = Node {
        metadata: ObjectMeta {
            name: Some("n1".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    api.create(&PostParams::default(), &node)
        .await
        .expect("create Node");
    let set = |id: &str| Patch::Merge(json!({"spec": {"providerID": id}}));
    // From "" to a value is allowed (a cloud provider initializing the Node) ...
    let first = api
        .patch("n1", &PatchParams::default(), &set("ferrolb://n1"))
        .await
        .expect("first providerID is accepted");
    assert_eq!(
        first.spec.and_then(|s| s.provider_id).as_deref(),
        Some("ferrolb://n1")
    );
    // ... writing the same value again is no change ...
    api.patch("n1", &PatchParams::default(), &set("ferrolb://n1"))
        .await
        .expect("same providerID is accepted");
    // ... but any other value, or clearing it, is 422 with the apiserver's sentence.
    for other in ["aws:///eu-west-1a/i-1", ""] {
        match api.patch("n1", &PatchParams::default(), &set(other)).await {
            Err(Error::Api(s)) => {
                assert_eq!(s.code, 422, "{other:?}");
                assert_eq!(s.reason, "Invalid");
                assert_eq!(
                    s.message,
                    "Node \"n1\" is invalid: spec.providerID: Forbidden: node updates may not \
                     change providerID except from \"\" to valid"
                );
            }
            result => panic!("changing providerID to {other:?} must be refused: {result:?}"),
        }
    }
    let stored = api.get("n1").await.expect("get Node");
    assert_eq!(
        stored.spec.and_then(|s| s.provider_id).as_deref(),
        Some("ferrolb://n1")
    );
}

#[tokio::test]
async fn invalid_names_are_422() {
    let server = TestApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    match api
        .create(&PostParams::default(), &configmap("Bad_Name", &[]))
        .await
    {
        Err(Error::Api(s)) => {
            assert_eq!(s.code, 422);
            assert!(
                s.message.contains("metadata.name") && s.message.contains("Bad_Name"),
                "{}",
                s.message
            );
        }
        other => panic!("expected 422, got {other:?}"),
    }
}

#[tokio::test]
async fn metadata_only_requests_get_partial_object_metadata() {
    let server = TestApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    api.create(&PostParams::default(), &configmap("a", &[("app", "web")]))
        .await
        .expect("create");
    let one = api.get_metadata("a").await.expect("get_metadata");
    assert_eq!(
        one.metadata
            .labels
            .unwrap_or_default()
            .get("app")
            .map(String::as_str),
        Some("web")
    );
    let list = api
        .list_metadata(&ListParams::default())
        .await
        .expect("list_metadata");
    assert_eq!(list.items.len(), 1);
}

#[tokio::test]
async fn deleting_a_namespace_deletes_its_objects() {
    let server = TestApiServer::new();
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(server.client());
    let ns = serde_json::from_value(json!({"metadata": {"name": "team-a"}})).expect("namespace");
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
    let in_ns: Api<ConfigMap> = Api::namespaced(server.client(), "team-a");
    in_ns
        .create(&PostParams::default(), &configmap("a", &[]))
        .await
        .expect("create in namespace");
    let elsewhere: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    elsewhere
        .create(&PostParams::default(), &configmap("b", &[]))
        .await
        .expect("create in default");
    namespaces
        .delete("team-a", &DeleteParams::default())
        .await
        .expect("delete namespace");
    assert_eq!(api_code(in_ns.get("a").await), 404);
    assert!(
        elsewhere.get("b").await.is_ok(),
        "other namespaces are untouched"
    );
}
