//! Server-side apply through kube-rs' `Patch::Apply`: create, merge across
//! managers, removal of fields a manager stops applying, conflicts and force.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Patch, PatchParams};
use kube::{Api, Error};
use serde_json::{Value, json};
use test_apiserver::TestApiServer;

#[tokio::test]
async fn server_side_apply_creates_merges_managers_and_drops_unapplied_fields() {
    let server = TestApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let mine = PatchParams::apply("ferrolb-test");
    let theirs = PatchParams::apply("someone-else");
    let cm = |data: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": data});
    let created = api
        .patch("a", &mine, &Patch::Apply(&cm(json!({"x": "1"}))))
        .await
        .expect("apply creates");
    assert_eq!(created.metadata.namespace.as_deref(), Some("default"));
    api.patch("a", &theirs, &Patch::Apply(&cm(json!({"z": "9"}))))
        .await
        .expect("second manager merges");
    let merged = api
        .patch("a", &mine, &Patch::Apply(&cm(json!({"y": "2"}))))
        .await
        .expect("apply again");
    let data = merged.data.clone().unwrap_or_default();
    let keys: Vec<&str> = data.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["y", "z"],
        "x was dropped by its manager; z belongs to someone else"
    );
    let mut managers: Vec<String> = merged
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    managers.sort();
    assert_eq!(managers, ["ferrolb-test", "someone-else"]);
    let again = api
        .patch("a", &mine, &Patch::Apply(&cm(json!({"y": "2"}))))
        .await
        .expect("same apply");
    assert_eq!(
        again.metadata.resource_version, merged.metadata.resource_version,
        "re-applying is a no-op"
    );
}

#[tokio::test]
async fn server_side_apply_conflicts_between_managers_unless_forced() {
    let server = TestApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let cm = |x: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"x": x}});
    api.patch("a", &PatchParams::apply("first"), &Patch::Apply(&cm("1")))
        .await
        .expect("first applies");
    match api
        .patch("a", &PatchParams::apply("second"), &Patch::Apply(&cm("2")))
        .await
    {
        Err(Error::Api(s)) => {
            assert_eq!(s.code, 409);
            assert!(
                s.message.contains("conflict with \"first\": .data.x"),
                "{}",
                s.message
            );
        }
        other => panic!("expected an apply conflict, got {other:?}"),
    }
    let forced = api
        .patch(
            "a",
            &PatchParams::apply("second").force(),
            &Patch::Apply(&cm("2")),
        )
        .await
        .expect("forced apply");
    assert_eq!(
        forced.data.unwrap_or_default().get("x").map(String::as_str),
        Some("2")
    );
}
