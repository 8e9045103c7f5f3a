//! Cluster mode with a `LoadBalancerPool` (its CRD as shipped in manifests/provider/): the
//! pool's `nodeSelector` decides which in-process announcers get a BGP address, relabelling a
//! Node moves it, a selector that selects nobody is a `NoEligibleNode` condition naming the
//! pool and selector, and the pool's BGP attributes arrive in each node's Sync.

mod support;

use k8s_openapi::{
    api::core::v1::Node,
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, Client,
    api::{DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams},
    discovery::ApiResource,
};
use support::announcer::{Election, FakeAnnouncer, Pki, register_nodes};
use support::*;
use test_apiserver::TestApiServer;

const NODES: [&str; 3] = ["node-1", "node-2", "node-3"];

fn pools(client: &Client) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("ferrolb.io", "v1alpha1", "LoadBalancerPool");
    Api::all_with(client.clone(), &ApiResource::from_gvk(&gvk))
}

async fn label(client: &Client, node: &str, rack: &str) {
    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .patch(
            node,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"labels": {"rack": rack}}})),
        )
        .await
        .expect("label node");
}

fn sent_to(announcers: &[FakeAnnouncer], address: &str) -> Vec<&'static str> {
    NODES
        .iter()
        .zip(announcers)
        .filter(|(_, f)| f.addresses().iter().any(|a| a == address))
        .map(|(n, _)| *n)
        .collect()
}

fn announced(svc: &k8s_openapi::api::core::v1::Service) -> Option<(String, String, String)> {
    svc.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "ferrolb.io/Announced")
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

#[tokio::test]
async fn a_pools_node_selector_and_bgp_attributes_decide_who_advertises_what() {
    let server = TestApiServer::new();
    let client = server.client();
    let pki = Pki::new();
    let election = Election::default();
    let mut announcers = Vec::new();
    for _ in NODES {
        announcers.push(FakeAnnouncer::start_in(&pki, &election).await);
    }
    let names: Vec<String> = NODES.iter().map(|n| n.to_string()).collect();
    register_nodes(&client, &names, &announcers).await;
    label(&client, "node-1", "r1").await;
    label(&client, "node-2", "r1").await;
    label(&client, "node-3", "r2").await;

    let manifest = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../manifests/provider/crd-loadbalancerpools.yaml"),
    )
    .expect("read the CRD");
    let crd: CustomResourceDefinition = serde_saphyr::from_str(&manifest).expect("CRD YAML");
    Api::<CustomResourceDefinition>::all(client.clone())
        .create(&PostParams::default(), &crd)
        .await
        .expect("install the CRD");
    let pool: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "ferrolb.io/v1alpha1", "kind": "LoadBalancerPool",
        "metadata": {"name": "rack-2"},
        "spec": {
            "blocks": [{"cidr": "203.0.113.0/28"}], "mode": "bgp",
            "nodeSelector": {"matchLabels": {"rack": "r2"}},
            "bgp": {"communities": ["65000:100", "no-export"],
                    "largeCommunities": ["65000:1:2"], "localPreference": 200},
        },
    }))
    .expect("pool");
    pools(&client)
        .create(&PostParams::default(), &pool)
        .await
        .expect("create the pool");
    set_pools(&client, &[("range-global", "192.0.2.200-192.0.2.209")]).await;
    let _running = start_with_tls(&server, &["--announcers=cluster"], Some(pki.client()));
    create(&client, "default", &lb("web")).await;

    let address = eventually("web announced", || async {
        let svc = get(&client, "default", "web").await?;
        let (status, _, _) = announced(&svc)?;
        (status == "True").then(|| allocated(&svc)).flatten()
    })
    .await;
    assert!(address.starts_with("203.0.113."), "{address}");
    assert_eq!(sent_to(&announcers, &address), ["node-3"]);
    let entry = announcers[2]
        .state
        .lock()
        .expect("lock")
        .set
        .values()
        .find(|a| a.address == address)
        .cloned()
        .expect("entry");
    let bgp = entry.bgp.expect("BGP attributes in the Sync");
    assert_eq!(bgp.communities, ["65000:100", "65535:65281"]);
    assert_eq!(bgp.large_communities, ["65000:1:2"]);
    assert_eq!(bgp.local_pref, Some(200));

    // node-1 joins rack r2: it advertises too.
    label(&client, "node-1", "r2").await;
    eventually("node-1 advertises", || async {
        (sent_to(&announcers, &address) == ["node-1", "node-3"]).then_some(())
    })
    .await;

    // A selector that selects nobody: withdrawn everywhere, and the condition says why.
    pools(&client)
        .patch(
            "rack-2",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"nodeSelector": {
                "matchLabels": {"rack": "r9"}}}})),
        )
        .await
        .expect("edit the pool");
    let message = eventually("NoEligibleNode", || async {
        let svc = get(&client, "default", "web").await?;
        let (status, reason, message) = announced(&svc)?;
        (status == "False" && reason == "NoEligibleNode").then_some(message)
    })
    .await;
    assert_eq!(
        message,
        format!(
            "{address}: pool lbpool/rack-2 has nodeSelector `rack=r9`, which selects none of \
             the 3 nodes with an announcer or Node object"
        )
    );
    eventually("withdrawn everywhere", || async {
        sent_to(&announcers, &address).is_empty().then_some(())
    })
    .await;
}
