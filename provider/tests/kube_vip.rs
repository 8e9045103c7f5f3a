//! Coexistence with kube-vip (`--announcers=none`): the real controller with
//! `ingress_ip_only` against the in-process test API server, and a client that writes the
//! Service status the way kube-vip does once it announces an address.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use serde_json::json;
use support::*;
use test_apiserver::TestApiServer;

#[tokio::test]
async fn status_written_by_kube_vip_is_left_alone_with_ingress_ip_only() {
    let server = TestApiServer::new();
    let client = server.client();
    set_pools(&client, &[("range-global", "192.0.2.10-192.0.2.20")]).await;
    let _controller = start_with(&server, &[], |ctx| ctx.settings.ingress_ip_only = true);
    create(&client, "default", &lb("web")).await;
    let address = wait_allocated(&client, "default", "web").await;

    // kube-vip announces the address, then reports it with the Service's ports.
    let api: Api<Service> = Api::namespaced(client.clone(), "default");
    let kube_vips = json!([{"ip": address, "ports": [{"port": 80, "protocol": "TCP"}]}]);
    api.patch_status(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"loadBalancer": {"ingress": kube_vips}}})),
    )
    .await
    .expect("kube-vip-like status write");
    let written = get(&client, "default", "web").await.expect("the Service");
    let version = written.metadata.resource_version.clone();

    // Long enough for the controller to react (it rewrote ingress within a second before).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let later = get(&client, "default", "web").await.expect("the Service");
    let ingress = |svc: &Service| {
        serde_json::to_value(svc).expect("serializes")["status"]["loadBalancer"]["ingress"].clone()
    };
    assert_eq!(
        ingress(&later),
        kube_vips,
        "the status kube-vip wrote stays"
    );
    assert_eq!(
        later.metadata.resource_version, version,
        "the Service was not written again after kube-vip's status"
    );
}
