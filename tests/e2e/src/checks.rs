//! The checks the scenarios are made of. Each is a bounded poll ([`wait_for`]) whose
//! failure names what was expected and what was seen: the Service's condition and ingress,
//! every announcer's `ctl state`, BIRD's next hops, the client's neighbour entry and which
//! node answered its TCP connection.

use std::time::Duration;

use serde_json::Value;

use super::announcers::Announced;
use super::client::tcp_hello;
use super::cluster::{Cluster, NODES};
use super::kube::{condition, ingress_ips};
use super::wait_for;

/// The condition type the provider keeps on every Service it announces.
pub const ANNOUNCED: &str = "ferrolb.io/Announced";

/// How long the provider and announcers get for each change (placement, Sync, gratuitous
/// ARP/NA, BGP UPDATE). Generous for a loaded 2-core machine; a pass takes far less.
pub const CHANGE: Duration = Duration::from_secs(30);

/// A Service as the user sees it once announced.
#[derive(Debug, Clone)]
pub struct Seen {
    pub ips: Vec<String>,
    /// `status` `reason` and `message` of the Announced condition.
    pub status: String,
    pub reason: String,
    pub message: String,
}

/// The Service's Announced condition and ingress, as one line for failure messages.
fn describe(service: &Value) -> (Option<Seen>, String) {
    let ips = ingress_ips(service);
    match condition(service, ANNOUNCED) {
        Some(c) => {
            let seen = Seen {
                ips: ips.clone(),
                status: c["status"].as_str().unwrap_or_default().to_string(),
                reason: c["reason"].as_str().unwrap_or_default().to_string(),
                message: c["message"].as_str().unwrap_or_default().to_string(),
            };
            let text = format!(
                "condition {ANNOUNCED}={} reason={} message={:?}; ingress {ips:?}",
                seen.status, seen.reason, seen.message
            );
            (Some(seen), text)
        }
        None => (
            None,
            format!(
                "no {ANNOUNCED} condition (conditions {}); ingress {ips:?}",
                service["status"]["conditions"]
            ),
        ),
    }
}

/// Waits until Service `namespace/name` has condition Announced=True, an ingress, and a
/// condition message that passes `accept`.
pub fn wait_announced(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
    what: &str,
    accept: impl Fn(&Seen) -> bool,
) -> Seen {
    wait_for(
        &format!("Service {namespace}/{name}: {ANNOUNCED}=True with an ingress, {what}"),
        CHANGE,
        || {
            let service = cluster.service(namespace, name);
            match describe(&service) {
                (Some(seen), _)
                    if seen.status == "True" && !seen.ips.is_empty() && accept(&seen) =>
                {
                    Ok(seen)
                }
                (_, text) => Err(text),
            }
        },
    )
}

/// Waits until Service `namespace/name` has condition Announced=False with `reason`.
pub fn wait_not_announced(cluster: &Cluster, namespace: &str, name: &str, reason: &str) -> Seen {
    wait_for(
        &format!("Service {namespace}/{name}: {ANNOUNCED}=False reason {reason}"),
        CHANGE,
        || {
            let service = cluster.service(namespace, name);
            match describe(&service) {
                (Some(seen), _) if seen.status == "False" && seen.reason == reason => Ok(seen),
                (_, text) => Err(text),
            }
        },
    )
}

/// Every running announcer's announcements, for failure messages.
pub fn all_states(cluster: &Cluster) -> String {
    NODES
        .iter()
        .map(|node| match cluster.announced(node) {
            Ok(list) => format!(
                "{node}: [{}]",
                list.iter()
                    .map(|a| format!("{} {} {}", a.address, a.mode, a.phase))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Err(e) => format!("{node}: {e}"),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The nodes whose announcer holds `ip` active in `mode`; Err when any announcer that should
/// be running cannot be read.
fn active_on(cluster: &Cluster, ip: &str, mode: &str) -> Result<Vec<String>, String> {
    let mut nodes = Vec::new();
    for (index, node) in NODES.iter().enumerate() {
        if cluster.announcers[index].is_none() {
            continue;
        }
        let list = cluster.announced(node)?;
        if list
            .iter()
            .any(|a| a.address == ip && a.mode == mode && a.phase == "active")
        {
            nodes.push(node.to_string());
        }
    }
    Ok(nodes)
}

/// Waits until exactly one node announces `ip` (active, `mode`) and no other node holds it
/// active in any mode (another node may list it not in force, e.g. as a failover candidate);
/// returns that node. `not` excludes a node (the one an address must move away from).
pub fn wait_single_owner(cluster: &Cluster, ip: &str, mode: &str, not: Option<&str>) -> String {
    let allowed: Vec<&str> = NODES.iter().copied().filter(|n| Some(*n) != not).collect();
    wait_single_owner_among(cluster, ip, mode, &allowed)
}

/// [`wait_single_owner`] where the owner must be one of `allowed` (the eligible nodes).
pub fn wait_single_owner_among(
    cluster: &Cluster,
    ip: &str,
    mode: &str,
    allowed: &[&str],
) -> String {
    let expected = format!("exactly one node of {allowed:?} announcing {ip} ({mode}) in ctl state");
    wait_for(&expected, CHANGE, || {
        let active = active_on(cluster, ip, mode)?;
        let mut active_any_mode = Vec::new();
        for other in ["layer2", "vip", "bgp"] {
            active_any_mode.extend(active_on(cluster, ip, other)?);
        }
        match active.as_slice() {
            [owner] if active_any_mode == active && allowed.contains(&owner.as_str()) => {
                Ok(owner.clone())
            }
            _ => Err(all_states(cluster)),
        }
    })
}

/// Waits until exactly `nodes` announce `ip` in BGP mode and BIRD holds `<ip>/32` (or /128)
/// with exactly their addresses as next hops.
pub fn wait_bgp(cluster: &Cluster, ip: &str, nodes: &[&str]) {
    let prefix = host_prefix(ip);
    let mut want_hops: Vec<String> = nodes
        .iter()
        .map(|n| {
            let host = cluster.host(n);
            if ip.contains(':') {
                host.ipv6.clone()
            } else {
                host.ipv4.clone()
            }
        })
        .collect();
    want_hops.sort();
    let want_nodes: Vec<String> = nodes.iter().map(|n| n.to_string()).collect();
    wait_for(
        &format!("{ip} announced in BGP mode by {nodes:?} and {prefix} at BIRD via {want_hops:?}"),
        CHANGE,
        || {
            let active = active_on(cluster, ip, "bgp")?;
            let hops = cluster.bird.next_hops(&prefix);
            if active == want_nodes && hops == want_hops {
                Ok(())
            } else {
                Err(format!("BIRD next hops {hops:?}; {}", all_states(cluster)))
            }
        },
    );
}

/// Waits until no announcer lists `ip` and BIRD has no route for it.
pub fn wait_withdrawn(cluster: &Cluster, ip: &str) {
    let prefix = host_prefix(ip);
    wait_for(
        &format!("{ip} withdrawn: in no announcer's ctl state and {prefix} gone from BIRD"),
        CHANGE,
        || {
            let listing = cluster.nodes_announcing(ip)?;
            let hops = cluster.bird.next_hops(&prefix);
            if listing.is_empty() && hops.is_empty() {
                Ok(())
            } else {
                Err(format!("BIRD next hops {hops:?}; {}", all_states(cluster)))
            }
        },
    );
}

/// Waits until a TCP connection from the client to `ip:80` is answered by `node`, then
/// checks that the client's neighbour entry for `ip` is `node`'s eth0 MAC. Returns the
/// greeting and the MAC.
pub fn wait_reachable_at(cluster: &Cluster, ip: &str, node: &str) -> (String, String) {
    let client = cluster.host("client").clone();
    let want = format!("You've hit {node}");
    let greeting = wait_for(
        &format!("client's TCP connection to {ip}:80 answered by {node}"),
        CHANGE,
        || {
            let text = tcp_hello(&client, ip)?;
            if text == want {
                Ok(text)
            } else {
                Err(format!("answered {text:?}"))
            }
        },
    );
    let mac = cluster.host(node).mac();
    let seen = client.neighbour(ip);
    match &seen {
        Some((lladdr, _)) if *lladdr == mac => {}
        _ => panic!("client's neighbour entry for {ip} is {seen:?}, expected {node}'s MAC {mac}"),
    }
    (greeting, mac)
}

/// Waits for an Event with `reason` on Service `namespace/name` whose message contains every
/// word of `words`; returns the message.
pub fn wait_event(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
    reason: &str,
    words: &[&str],
) -> String {
    wait_for(
        &format!("an Event {reason} on Service {namespace}/{name} mentioning {words:?}"),
        CHANGE,
        || {
            let events = cluster.kubectl.events_for("Service", namespace, name);
            events
                .iter()
                .find(|(r, m)| r == reason && words.iter().all(|w| m.contains(w)))
                .map(|(_, m)| m.clone())
                .ok_or_else(|| format!("events {events:?}"))
        },
    )
}

/// Waits for the Event `Moved` on Service `namespace/name` that says `<ip> moved from
/// <from> to <to>`; returns its message (the caller checks the reason it gives).
pub fn wait_moved(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
    ip: &str,
    from: &str,
    to: &str,
) -> String {
    let phrase = format!("{ip} moved from {from} to {to}");
    wait_event(cluster, namespace, name, "Moved", &[&phrase])
}

/// `ip/32` or `ip/128`.
pub fn host_prefix(ip: &str) -> String {
    if ip.contains(':') {
        format!("{ip}/128")
    } else {
        format!("{ip}/32")
    }
}

/// Every node's announcements, for comparing before and after (`since` timestamps
/// included).
pub fn snapshot(cluster: &Cluster) -> Vec<(String, Vec<Announced>)> {
    NODES
        .iter()
        .map(|node| {
            let mut list = cluster
                .announced(node)
                .unwrap_or_else(|e| panic!("ctl state of {node}: {e}"));
            list.sort_by(|a, b| (&a.address, &a.mode).cmp(&(&b.address, &b.mode)));
            (node.to_string(), list)
        })
        .collect()
}
