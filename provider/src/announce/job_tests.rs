//! The announce job's Sync generations across a driver that stops and starts again.

use std::sync::Arc;

use k8s_openapi::api::{core::v1::Node, discovery::v1::EndpointSlice};
use serde_json::json;
use tokio::sync::{mpsc, watch};

use super::{Job, generation};
use crate::{
    announce::{
        heartbeat_key::KeyOutcome,
        model::{HeartbeatKey, NodeName},
        topology::{node_info, slice_view},
    },
    args::StatusMode,
    index::{Index, IndexSettings},
    ipam::ServiceKey,
    metrics::Metrics,
    relist::Change,
    service_view::ClassFilter,
};

const EPOCH: u64 = 3;

fn serving_index() -> Index {
    let mut index = Index::new(
        IndexSettings {
            classes: ClassFilter::default(),
            write_load_balancer_ip: true,
            status: StatusMode::Allocated,
            reallocate_outside_pools: false,
            config_source: "kube-system/kubevip".into(),
            cluster_default_mode: Some(crate::announce::Mode::Layer2),
            ingress_ip_only: false,
            requests_unchecked: false,
        },
        Arc::new(Metrics::default()),
    );
    let _ = index.reset_services(&[]);
    let _ = index.apply_config(None);
    assert!(index.is_serving());
    index
}

fn announcer_slice() -> EndpointSlice {
    serde_json::from_value(json!({
        "metadata": {"namespace": "kube-system", "name": "ferrolb-announcer-abcde",
                     "labels": {"kubernetes.io/service-name": "ferrolb-announcer"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["192.0.2.1"], "nodeName": "node-a",
                       "conditions": {"ready": true}}],
        "ports": [{"name": "grpc", "port": 9443, "protocol": "TCP"}],
    }))
    .expect("EndpointSlice")
}

fn node() -> Node {
    serde_json::from_value(json!({
        "metadata": {"name": "node-a"},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }))
    .expect("Node")
}

fn generation_of(job: &Job, node: &str) -> u64 {
    job.drivers
        .get(&NodeName::from(node))
        .expect("a driver for the node")
        .desired
        .borrow()
        .generation
}

#[tokio::test]
async fn a_driver_started_again_in_the_same_term_continues_above_the_generations_sent() {
    // No TLS material: the drivers wait for it and never dial.
    let (_tls_tx, tls) = watch::channel(None);
    let (reports, _reports_rx) = mpsc::unbounded_channel();
    let mut job = Job::new(
        ServiceKey::new("kube-system", "ferrolb-announcer"),
        3,
        EPOCH,
        tls,
        reports,
        Arc::new(Metrics::default()),
        crate::peers::book::PeerBook::new("kube-system"),
    );
    let mut index = serving_index();
    job.node_change(Change::Listed(node_info(&node()).into_iter().collect()));
    job.slice_change(Change::Listed(
        slice_view(&announcer_slice()).into_iter().collect(),
    ));
    job.key_outcome(Err("not read yet".into()) as KeyOutcome);
    let _ = job.flush(&mut index);
    assert_eq!(generation_of(&job, "node-a"), generation(EPOCH, 1));
    // The heartbeat key is read: the node's set is sent again with it.
    job.key_outcome(Ok(HeartbeatKey([7; HeartbeatKey::LEN])));
    let _ = job.flush(&mut index);
    assert_eq!(generation_of(&job, "node-a"), generation(EPOCH, 2));

    // The announcer's endpoint leaves the EndpointSlices for a moment (the slice is
    // replaced by another): its driver stops, and starts again when it is back. The
    // announcer still holds generation 2 and refuses anything lower.
    job.slice_change(Change::Listed(Vec::new()));
    let _ = job.flush(&mut index);
    assert!(job.drivers.is_empty());
    job.slice_change(Change::Listed(
        slice_view(&announcer_slice()).into_iter().collect(),
    ));
    let _ = job.flush(&mut index);
    assert!(
        generation_of(&job, "node-a") > generation(EPOCH, 2),
        "the new driver's first Sync must carry a generation above the {} the announcer accepted, not {}",
        generation(EPOCH, 2),
        generation_of(&job, "node-a")
    );
}
