//! Next to kube-vip (`ingress_ip_only`): kube-vip writes `status.loadBalancer.ingress` with
//! the Service's ports once it announces an address, and re-adds its VIP whenever the
//! ingress ports differ from the spec. The index must leave that status alone.

use super::*;

fn kube_vip_settings() -> IndexSettings {
    IndexSettings {
        ingress_ip_only: true,
        ..settings()
    }
}

/// `svc` after kube-vip wrote `ingress` into its status (a new resourceVersion).
fn written_by_kube_vip(svc: &Service, ingress: Value) -> Service {
    let mut value = serde_json::to_value(svc).expect("serializes");
    value["status"]["loadBalancer"] = json!({ "ingress": ingress });
    let rv: u64 = svc
        .metadata
        .resource_version
        .as_deref()
        .unwrap_or("0")
        .parse()
        .unwrap_or(0);
    value["metadata"]["resourceVersion"] = json!((rv + 1).to_string());
    serde_json::from_value(value).expect("still a Service")
}

#[test]
fn ingress_written_by_kube_vip_with_ports_causes_no_write_when_ingress_ip_only() {
    let svc = service("default", "web", 1);
    let (mut index, writes) = started(
        kube_vip_settings(),
        &[("range-global", "192.0.2.10-192.0.2.20")],
        vec![svc.clone()],
    );
    let allocated = commit(&svc, &only(writes, "web"));
    assert_eq!(ingress(&allocated), vec![json!({"ip": "192.0.2.10"})]);
    assert!(index.apply_service(&allocated).is_empty(), "our own echo");
    let kube_vips = [
        json!([{"ip": "192.0.2.10", "ports": [{"port": 80, "protocol": "TCP"}]}]),
        json!([{"ip": "192.0.2.10", "ipMode": "VIP", "ports": [{"port": 80, "protocol": "TCP"}]}]),
        json!([{"ip": "192.0.2.10", "ipMode": "Proxy"}]),
    ];
    for written in kube_vips {
        let after = written_by_kube_vip(&allocated, written.clone());
        let writes = index.apply_service(&after);
        assert!(writes.is_empty(), "{written}: {writes:?}");
    }
}

#[test]
fn ingress_written_by_kube_vip_is_replaced_when_the_address_moves() {
    let svc = service("default", "web", 1);
    let (mut index, writes) = started(
        kube_vip_settings(),
        &[("range-global", "192.0.2.10-192.0.2.20")],
        vec![svc.clone()],
    );
    let allocated = commit(&svc, &only(writes, "web"));
    let announced = written_by_kube_vip(
        &allocated,
        json!([{"ip": "192.0.2.10", "ports": [{"port": 80, "protocol": "TCP"}]}]),
    );
    assert!(index.apply_service(&announced).is_empty());
    // The user asks for another address: the old entry goes, the new one is a bare IP for
    // kube-vip to complete once it announces it.
    let moved = annotated(announced, "kube-vip.io/loadbalancerIPs", "192.0.2.15");
    let after = commit(&moved, &only(index.apply_service(&moved), "web"));
    assert_eq!(ingress(&after), vec![json!({"ip": "192.0.2.15"})]);
}

#[test]
fn dhcp_lease_reported_by_kube_vip_causes_no_write_when_ingress_ip_only() {
    let svc = service("default", "web", 1);
    let (mut index, writes) = started(
        kube_vip_settings(),
        &[("cidr-global", "0.0.0.0/32")],
        vec![svc.clone()],
    );
    let allocated = commit(&svc, &only(writes, "web"));
    assert!(ingress(&allocated).is_empty(), "the lease is not known yet");
    // kube-vip asked its DHCP server for an address and reports the lease.
    let leased = written_by_kube_vip(
        &allocated,
        json!([{"ip": "192.0.2.77", "ports": [{"port": 80, "protocol": "TCP"}]}]),
    );
    let writes = index.apply_service(&leased);
    assert!(writes.is_empty(), "{writes:?}");
}
