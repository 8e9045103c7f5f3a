//! Building blocks shared by the cluster-mode scenario files: a cluster with its provider,
//! Services created and awaited until announced.

use serde_json::{Value, json};

use super::certs::AnnouncerTlsMode;
use super::checks::wait_announced;
use super::cluster::Cluster;
use super::kube::lb_service;
use super::provider::ProviderOptions;

/// What the tests run besides `ip`: the router, kubectl, and the client's ping and arping.
pub const TOOLS: &[&str] = &["bird", "birdc", "kubectl", "ping", "arping"];

/// A cluster with one provider in cluster mode (provider-managed TLS), or None (with a
/// message) when this machine cannot run it and CI is not set.
pub fn cluster_with_provider(test: &str) -> Option<Cluster> {
    cluster_with_provider_tls(test, super::cluster::ANNOUNCER_TLS)
}

pub fn cluster_with_provider_tls(test: &str, tls: AnnouncerTlsMode) -> Option<Cluster> {
    if !super::netns::prerequisites(test, TOOLS) {
        return None;
    }
    Some(Cluster::start_with_tls(
        tls,
        &[provider("p1", false, 18080)],
    ))
}

pub fn provider(identity: &str, leader_elect: bool, metrics_port: u16) -> ProviderOptions {
    ProviderOptions {
        cluster_mode: true,
        leader_elect,
        identity: identity.into(),
        metrics_port,
        extra_args: Vec::new(),
    }
}

pub fn ipv6_only() -> Value {
    json!({"ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv6"]})
}

pub fn mode(mode: &str) -> Value {
    json!({"ferrolb.io/mode": mode})
}

/// Creates a LoadBalancer Service and waits until it is announced; returns its first address
/// and the condition message.
pub fn create_announced(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
    annotations: Value,
    spec: Value,
    mode_word: &str,
) -> (String, String) {
    cluster
        .kubectl
        .apply(&lb_service(namespace, name, annotations, spec));
    let seen = wait_announced(
        cluster,
        namespace,
        name,
        &format!("message naming mode {mode_word} (any case)"),
        |s| s.message.to_lowercase().contains(mode_word),
    );
    (seen.ips[0].clone(), seen.message)
}
