//! BGP mode: a Service in namespace `bgp` (its own pool in the ConfigMap) with
//! `ferrolb.io/mode: bgp`; every eligible node advertises its /32 to the BIRD router, and a
//! node labelled `node.kubernetes.io/exclude-from-external-load-balancers` withdraws it.

use crate::checks::{host_prefix, wait_bgp};
use crate::cluster::NODES;

use super::Demo;

const SERVICE: &str = r#"apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: bgp
  annotations:
    ferrolb.io/mode: bgp
spec:
  type: LoadBalancer
  selector:
    app: web
  ports:
    - name: http
      port: 80
"#;

const EXCLUDE: &str = "node.kubernetes.io/exclude-from-external-load-balancers";

/// The BGP scenario.
pub fn routes(demo: &mut Demo) {
    demo.report
        .section("BGP: the Service's /32 at the router from every eligible node");
    demo.apply("bgp-web.yaml", SERVICE);
    let ip = demo.external_ip("bgp", "web");
    wait_bgp(&demo.cluster, &ip, &NODES);
    show_routes(demo, &ip);

    demo.kubectl(&["label", "node", "node-3", &format!("{EXCLUDE}=true")]);
    wait_bgp(&demo.cluster, &ip, &["node-1", "node-2"]);
    show_routes(demo, &ip);
    demo.kubectl(&["label", "node", "node-3", &format!("{EXCLUDE}-")]);
    wait_bgp(&demo.cluster, &ip, &NODES);
    show_routes(demo, &ip);
    demo.delete_services("bgp", &["web"]);
}

/// BIRD's next hops for the address, as `birdc show route` lists them.
fn show_routes(demo: &mut Demo, ip: &str) {
    let prefix = host_prefix(ip);
    let hops = demo.cluster.bird.next_hops(&prefix);
    let nodes: Vec<String> = hops
        .iter()
        .filter_map(|hop| {
            NODES
                .iter()
                .find(|n| demo.cluster.host(n).ipv4 == *hop)
                .map(|n| format!("{hop} ({n})"))
        })
        .collect();
    demo.report.command(
        "router",
        &format!("birdc show route for {prefix}   # next hops"),
        &nodes.join("\n"),
    );
}
