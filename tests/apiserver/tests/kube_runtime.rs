//! kube-runtime on top of the server: a `Controller` whose reconciler uses
//! `finalizer()` (JSON Patch with `test`), the event `Recorder`
//! (events.k8s.io/v1 POST then PATCH), and CustomResourceDefinitions served
//! as soon as they are created.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, ObjectMeta, Patch,
    PatchParams, PostParams,
};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::{Controller, watcher};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use test_apiserver::TestApiServer;

const FINALIZER: &str = "ferrolb.io/test-cleanup";

struct Context {
    api: Api<ConfigMap>,
    cleaned: Mutex<Vec<String>>,
}

async fn reconcile(
    cm: Arc<ConfigMap>,
    ctx: Arc<Context>,
) -> Result<Action, kube::runtime::finalizer::Error<kube::Error>> {
    let api = ctx.api.clone();
    let finalizer_api = ctx.api.clone();
    finalizer(&finalizer_api, FINALIZER, cm, |event| async move {
        match event {
            Finalizer::Apply(cm) => {
                let patch = json!({"metadata": {"annotations": {"reconciled": "yes"}}});
                api.patch(
                    &cm.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await?;
                Ok(Action::await_change())
            }
            Finalizer::Cleanup(cm) => {
                ctx.cleaned
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(cm.name_any());
                Ok(Action::await_change())
            }
        }
    })
    .await
}

fn error_policy(
    _: Arc<ConfigMap>,
    _: &kube::runtime::finalizer::Error<kube::Error>,
    _: Arc<Context>,
) -> Action {
    Action::requeue(Duration::from_millis(100))
}

async fn eventually<F: std::future::Future<Output = bool>>(
    what: &str,
    mut check: impl FnMut() -> F,
) {
    for _ in 0..500 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for: {what}");
}

#[tokio::test]
async fn controller_with_finalizer_reconciles_and_cleans_up() {
    let server = TestApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let ctx = Arc::new(Context {
        api: api.clone(),
        cleaned: Mutex::new(Vec::new()),
    });
    let controller = Controller::new(api.clone(), watcher::Config::default())
        .run(reconcile, error_policy, ctx.clone())
        .for_each(|_| async {});
    let task = tokio::spawn(controller);

    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some("a".to_owned()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([("k".to_owned(), "v".to_owned())])),
        ..ConfigMap::default()
    };
    api.create(&PostParams::default(), &cm)
        .await
        .expect("create");
    eventually("finalizer added and object reconciled", || async {
        api.get("a").await.is_ok_and(|cm| {
            cm.finalizers().iter().any(|f| f == FINALIZER)
                && cm
                    .annotations()
                    .get("reconciled")
                    .is_some_and(|v| v == "yes")
        })
    })
    .await;

    api.delete("a", &DeleteParams::default())
        .await
        .expect("delete");
    eventually("cleanup ran and the object is gone", || async {
        api.get_opt("a").await.is_ok_and(|o| o.is_none())
    })
    .await;
    assert_eq!(
        *ctx.cleaned.lock().unwrap_or_else(|e| e.into_inner()),
        vec!["a".to_owned()]
    );
    // finalizer() uses JSON Patch with a `test` operation.
    let json_patches = server
        .request_log()
        .entries()
        .iter()
        .filter(|r| r.verb == "patch")
        .count();
    assert!(json_patches >= 2, "finalizer add and remove were patches");
    task.abort();
}

#[tokio::test]
async fn recorder_creates_then_patches_events() {
    let server = TestApiServer::new();
    let client = server.client();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm = cms
        .create(
            &PostParams::default(),
            &ConfigMap {
                metadata: ObjectMeta {
                    name: Some("a".to_owned()),
                    ..ObjectMeta::default()
                },
                ..ConfigMap::default()
            },
        )
        .await
        .expect("create");
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "ferrolb-test".to_owned(),
            instance: None,
        },
    );
    let event = Event {
        type_: EventType::Normal,
        reason: "Allocated".to_owned(),
        note: Some("203.0.113.10".to_owned()),
        action: "Allocate".to_owned(),
        secondary: None,
    };
    let reference = cm.object_ref(&());
    recorder
        .publish(&event, &reference)
        .await
        .expect("first publish creates");
    recorder
        .publish(&event, &reference)
        .await
        .expect("second publish patches the series");
    let events: Api<K8sEvent> = Api::namespaced(client, "default");
    let list = events
        .list(&ListParams::default())
        .await
        .expect("list events");
    assert_eq!(list.items.len(), 1, "one event with a series");
    let stored = &list.items[0];
    assert_eq!(stored.reason.as_deref(), Some("Allocated"));
    assert_eq!(stored.series.as_ref().map(|s| s.count), Some(2));
    let verbs: Vec<String> = server
        .request_log()
        .entries()
        .into_iter()
        .filter(|r| r.resource.as_deref() == Some("events") && r.verb != "list")
        .map(|r| r.verb)
        .collect();
    assert_eq!(verbs, vec!["create", "patch"]);

    // Mirrored into core v1, where kubectl get events / describe look.
    let core: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(server.client(), "default");
    let core_events = core
        .list(&ListParams::default().fields("involvedObject.name=a,involvedObject.kind=ConfigMap"))
        .await
        .expect("list core events");
    assert_eq!(core_events.items.len(), 1);
    assert_eq!(
        core_events.items[0].message.as_deref(),
        Some("203.0.113.10")
    );
    assert_eq!(core_events.items[0].count, Some(2));
}

fn crd(with_status: bool) -> CustomResourceDefinition {
    let subresources = if with_status {
        json!({"status": {}})
    } else {
        json!({})
    };
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "addresspools.ferrolb.io"},
        "spec": {
            "group": "ferrolb.io",
            "scope": "Namespaced",
            "names": {"plural": "addresspools", "singular": "addresspool", "kind": "AddressPool", "shortNames": ["ap"]},
            "versions": [{
                "name": "v1alpha1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                "subresources": subresources,
            }],
        },
    }))
    .expect("valid CRD")
}

#[tokio::test]
async fn created_crd_is_established_served_and_discoverable() {
    let server = TestApiServer::new();
    let client = server.client();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &crd(true))
        .await
        .expect("create CRD");
    let established = await_condition(
        crds.clone(),
        "addresspools.ferrolb.io",
        conditions::is_crd_established(),
    );
    tokio::time::timeout(Duration::from_secs(5), established)
        .await
        .expect("established in time")
        .expect("wait");

    let discovery = kube::Discovery::new(client.clone())
        .run()
        .await
        .expect("discovery");
    let (resource, caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk(
            "ferrolb.io",
            "v1alpha1",
            "AddressPool",
        ))
        .expect("AddressPool is discoverable");
    assert_eq!(resource.plural, "addresspools");
    assert!(
        caps.subresources
            .iter()
            .any(|(s, _)| s.plural == "addresspools/status" || s.plural == "status"),
        "{caps:?}"
    );

    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "ferrolb.io",
        "v1alpha1",
        "AddressPool",
    ));
    let pools: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let pool: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "ferrolb.io/v1alpha1", "kind": "AddressPool",
        "metadata": {"name": "web"}, "spec": {"cidr": "203.0.113.0/28"},
    }))
    .expect("object");
    pools
        .create(&PostParams::default(), &pool)
        .await
        .expect("create custom object");
    let patched = pools
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"used": 1}, "spec": {"cidr": "x"}})),
        )
        .await
        .expect("status patch");
    assert_eq!(patched.data["status"]["used"], 1);
    assert_eq!(
        patched.data["spec"]["cidr"], "203.0.113.0/28",
        "status writes leave spec alone"
    );

    // Deleting the CRD removes the resource and its objects.
    crds.delete("addresspools.ferrolb.io", &DeleteParams::default())
        .await
        .expect("delete CRD");
    match pools.get("web").await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 404),
        other => panic!("expected 404 after the CRD is gone, got {other:?}"),
    }
}

#[tokio::test]
async fn invalid_crd_is_rejected_with_the_field_named() {
    let server = TestApiServer::new();
    let crds: Api<CustomResourceDefinition> = Api::all(server.client());
    let mut bad = crd(false);
    bad.metadata.name = Some("wrong.ferrolb.io".to_owned());
    match crds.create(&PostParams::default(), &bad).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 422);
            assert!(
                s.message.contains("metadata.name must be")
                    && s.message.contains("addresspools.ferrolb.io"),
                "{}",
                s.message
            );
        }
        other => panic!("expected 422, got {other:?}"),
    }
}
