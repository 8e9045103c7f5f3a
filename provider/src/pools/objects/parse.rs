//! Reading each pool kind's object into an [`ObjectPool`].
//!
//! Parsing never fails as a whole: a field that cannot be used becomes a sentence in
//! `problems` naming the field and the value (for the object's status), and everything else
//! still counts, as with the ConfigMap. A real API server has already checked types and
//! enums against the CRD's schema; what is checked here is what a schema cannot say (a
//! range that ends before it starts, a CIDR with host bits, a malformed community).

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::Value;

use super::{Block, ObjectMeta, ObjectPool, PoolBgp, PoolKind, Selector};
use crate::announce::Mode;
use crate::pools::SearchOrder;

/// OpenELB's annotation marking the default Eip.
pub const EIP_DEFAULT_ANNOTATION: &str = "eip.openelb.kubesphere.io/is-default-eip";

/// Reads a `ferrolb.io/v1alpha1` `LoadBalancerPool`.
pub fn lbpool(object: &Value) -> ObjectPool {
    let mut pool = ObjectPool::new(PoolKind::LoadBalancerPool, "");
    pool.meta = meta(object);
    let spec = &object["spec"];
    blocks(&mut pool, &spec["blocks"]);
    pool.skip_first_last = allow_first_last(&mut pool, &spec["allowFirstLastIPs"]);
    pool.service_selector = selector(&mut pool, &spec["serviceSelector"], "spec.serviceSelector");
    pool.node_selector = selector(&mut pool, &spec["nodeSelector"], "spec.nodeSelector");
    pool.disabled = spec["disabled"].as_bool().unwrap_or(false);
    pool.mode = mode(&mut pool, &spec["mode"], "spec.mode");
    pool.interface = interface(&mut pool, &spec["interface"], "spec.interface");
    pool.search_order = match spec["searchOrder"].as_str() {
        None | Some("Ascending") => SearchOrder::Ascending,
        Some("Descending") => SearchOrder::Descending,
        Some(other) => {
            pool.problems.push(format!(
                "spec.searchOrder: `{other}` is not Ascending or Descending"
            ));
            SearchOrder::Ascending
        }
    };
    pool.priority = match &spec["priority"] {
        Value::Null => 0,
        value => match value.as_i64().and_then(|p| i32::try_from(p).ok()) {
            Some(priority) => priority,
            None => {
                pool.problems
                    .push(format!("spec.priority: `{value}` is not a 32-bit integer"));
                0
            }
        },
    };
    pool.bgp = bgp(&mut pool, &spec["bgp"]);
    pool
}

/// Reads an OpenELB `network.kubesphere.io/v1alpha2` `Eip`, as OpenELB's documentation
/// describes it: `address` is one address, a CIDR or `first-last`; `protocol` is `layer2`,
/// `bgp` (the default) or `vip`; `disable` stops new allocations. The Eip annotated
/// `eip.openelb.kubesphere.io/is-default-eip: "true"` is tried first.
pub fn eip(object: &Value) -> ObjectPool {
    let mut pool = ObjectPool::new(PoolKind::Eip, "");
    pool.meta = meta(object);
    pool.openelb_only = true;
    let spec = &object["spec"];
    match spec["address"].as_str().map(str::trim) {
        None | Some("") => pool.problems.push("spec.address: required".to_string()),
        Some(address) => match block_of_text(address) {
            Ok(block) => pool.blocks.push(block),
            Err(problem) => pool.problems.push(format!("spec.address: {problem}")),
        },
    }
    pool.mode = match &spec["protocol"] {
        Value::Null => Some(Mode::Bgp),
        value => mode(&mut pool, value, "spec.protocol").or(Some(Mode::Bgp)),
    };
    pool.interface = interface(&mut pool, &spec["interface"], "spec.interface");
    pool.disabled = spec["disable"].as_bool().unwrap_or(false);
    if let Some(namespaces) = spec["namespaces"].as_array() {
        let values: Vec<String> = namespaces
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect();
        if !values.is_empty() {
            pool.service_selector = Some(Selector {
                requirements: vec![super::selector::Requirement::In(
                    super::selector::SERVICE_NAMESPACE_KEY.to_string(),
                    values,
                )],
                ..Selector::default()
            });
        }
    }
    if !spec["namespaceSelector"].is_null() {
        pool.problems.push(
            "spec.namespaceSelector: not supported by FerroLB (it does not watch Namespaces); \
             list the namespaces in spec.namespaces instead"
                .to_string(),
        );
    }
    let default = object["metadata"]["annotations"][EIP_DEFAULT_ANNOTATION].as_str();
    pool.priority = i32::from(default.is_some_and(|v| v.trim().eq_ignore_ascii_case("true")));
    pool
}

/// Reads a Cilium `CiliumLoadBalancerIPPool` (`cilium.io/v2alpha1` or `v2`): `blocks` (or
/// the older `cidrs`), `allowFirstLastIPs` (default `Yes`, as since Cilium 1.16),
/// `serviceSelector`, `disabled`.
pub fn cilium(object: &Value) -> ObjectPool {
    let mut pool = ObjectPool::new(PoolKind::Cilium, "");
    pool.meta = meta(object);
    let spec = &object["spec"];
    if spec["blocks"].is_null() && !spec["cidrs"].is_null() {
        blocks(&mut pool, &spec["cidrs"]);
    } else {
        blocks(&mut pool, &spec["blocks"]);
    }
    pool.skip_first_last = allow_first_last(&mut pool, &spec["allowFirstLastIPs"]);
    pool.service_selector = selector(&mut pool, &spec["serviceSelector"], "spec.serviceSelector");
    pool.disabled = spec["disabled"].as_bool().unwrap_or(false);
    pool
}

fn meta(object: &Value) -> ObjectMeta {
    let metadata = &object["metadata"];
    let text = |field: &str| metadata[field].as_str().unwrap_or_default().to_string();
    ObjectMeta {
        name: text("name"),
        uid: text("uid"),
        generation: metadata["generation"].as_i64().unwrap_or(0),
        created: metadata["creationTimestamp"]
            .as_str()
            .and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok())
            .map_or(0, |t| t.as_second()),
    }
}

fn blocks(pool: &mut ObjectPool, value: &Value) {
    let Some(items) = value.as_array() else {
        if !value.is_null() {
            pool.problems
                .push(format!("spec.blocks: expected a list, got {value}"));
        }
        return;
    };
    for (i, item) in items.iter().enumerate() {
        let at = format!("spec.blocks[{i}]");
        match block(item) {
            Ok(block) => pool.blocks.push(block),
            Err(problem) => pool.problems.push(format!("{at}: {problem}")),
        }
    }
}

fn block(item: &Value) -> Result<Block, String> {
    if let Some(cidr) = item["cidr"].as_str() {
        return cidr_block(cidr.trim()).map_err(|p| format!("cidr: {p}"));
    }
    let start = item["start"]
        .as_str()
        .ok_or_else(|| "needs `cidr` or `start` (and optionally `stop`)".to_string())?;
    let start: IpAddr = start
        .trim()
        .parse()
        .map_err(|_| format!("start: `{start}` is not an IP address"))?;
    let stop = match item["stop"].as_str() {
        None => start,
        Some(stop) => stop
            .trim()
            .parse()
            .map_err(|_| format!("stop: `{stop}` is not an IP address"))?,
    };
    range_block(start, stop)
}

fn range_block(start: IpAddr, stop: IpAddr) -> Result<Block, String> {
    if start.is_ipv4() != stop.is_ipv4() {
        return Err(format!("{start}-{stop} mixes IPv4 and IPv6"));
    }
    if stop < start {
        return Err(format!("{start}-{stop} ends before it starts"));
    }
    Ok(Block::Range(start, stop))
}

fn cidr_block(text: &str) -> Result<Block, String> {
    let net: IpNet = text
        .parse()
        .map_err(|_| format!("`{text}` is not a CIDR (address/prefix length)"))?;
    if net.addr() != net.network() {
        return Err(format!(
            "`{text}` has host bits set; the network is {}",
            net.trunc()
        ));
    }
    Ok(Block::Cidr(net))
}

/// An Eip's `address`: one address, a CIDR or `first-last`.
fn block_of_text(text: &str) -> Result<Block, String> {
    if text.contains('/') {
        return cidr_block(text);
    }
    if let Some((start, stop)) = text.split_once('-') {
        let parse = |s: &str| {
            s.trim()
                .parse::<IpAddr>()
                .map_err(|_| format!("`{}` is not an IP address", s.trim()))
        };
        return range_block(parse(start)?, parse(stop)?);
    }
    let address: IpAddr = text
        .parse()
        .map_err(|_| format!("`{text}` is not an address, a CIDR or a first-last range"))?;
    Ok(Block::Range(address, address))
}

/// `allowFirstLastIPs: Yes|No` (default Yes); returns whether to skip them.
fn allow_first_last(pool: &mut ObjectPool, value: &Value) -> bool {
    match value.as_str() {
        None | Some("Yes") => false,
        Some("No") => true,
        Some(other) => {
            pool.problems.push(format!(
                "spec.allowFirstLastIPs: `{other}` is not Yes or No"
            ));
            false
        }
    }
}

fn selector(pool: &mut ObjectPool, value: &Value, field: &str) -> Option<Selector> {
    if value.is_null() {
        return None;
    }
    match Selector::parse(value, field) {
        Ok(selector) => Some(selector),
        Err(problem) => {
            // A selector that cannot be read must not widen the pool to every Service.
            pool.problems.push(format!(
                "{problem}; the pool selects nothing until it is fixed"
            ));
            Some(Selector::nothing())
        }
    }
}

fn mode(pool: &mut ObjectPool, value: &Value, field: &str) -> Option<Mode> {
    let text = value.as_str()?;
    let parsed = Mode::parse(text);
    if parsed.is_none() {
        pool.problems
            .push(format!("{field}: `{text}` is not layer2, vip or bgp"));
    }
    parsed
}

fn interface(pool: &mut ObjectPool, value: &Value, field: &str) -> Option<String> {
    let text = value.as_str().map(str::trim).filter(|t| !t.is_empty())?;
    match crate::announce::InterfaceChoice::parse(text) {
        Ok(_) => Some(text.to_string()),
        Err(problem) => {
            pool.problems.push(format!("{field}: {problem}"));
            None
        }
    }
}

fn bgp(pool: &mut ObjectPool, value: &Value) -> PoolBgp {
    let mut bgp = PoolBgp::default();
    let strings = |pool: &mut ObjectPool, field: &str| -> Vec<String> {
        match &value[field] {
            Value::Null => Vec::new(),
            Value::Array(items) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::trim).map(str::to_string))
                .collect(),
            other => {
                pool.problems
                    .push(format!("spec.bgp.{field}: expected a list, got {other}"));
                Vec::new()
            }
        }
    };
    for (i, community) in strings(pool, "communities").into_iter().enumerate() {
        if is_community(&community) {
            bgp.communities.push(community);
        } else {
            pool.problems.push(format!(
                "spec.bgp.communities[{i}]: `{community}` is not a community \
                 (ASN:value with two 16-bit numbers, or a well-known name such as no-export)"
            ));
        }
    }
    for (i, community) in strings(pool, "largeCommunities").into_iter().enumerate() {
        let parts: Vec<&str> = community.split(':').collect();
        if parts.len() == 3 && parts.iter().all(|p| p.parse::<u32>().is_ok()) {
            bgp.large_communities.push(community);
        } else {
            pool.problems.push(format!(
                "spec.bgp.largeCommunities[{i}]: `{community}` is not a large community \
                 (three 32-bit numbers, global:data1:data2)"
            ));
        }
    }
    match &value["localPreference"] {
        Value::Null => {}
        other => match other.as_u64().and_then(|v| u32::try_from(v).ok()) {
            Some(pref) => bgp.local_preference = Some(pref),
            None => pool.problems.push(format!(
                "spec.bgp.localPreference: `{other}` is not a number from 0 to 4294967295"
            )),
        },
    }
    bgp
}

/// Well-known community names (RFC 1997, RFC 3765, RFC 7999, RFC 8326, RFC 7611).
const WELL_KNOWN: [&str; 7] = [
    "no-export",
    "no-advertise",
    "no-export-subconfed",
    "no-peer",
    "blackhole",
    "graceful-shutdown",
    "accept-own",
];

fn is_community(text: &str) -> bool {
    if WELL_KNOWN.contains(&text) {
        return true;
    }
    match text.split_once(':') {
        Some((asn, value)) => asn.parse::<u16>().is_ok() && value.parse::<u16>().is_ok(),
        None => false,
    }
}

#[cfg(test)]
mod tests;
