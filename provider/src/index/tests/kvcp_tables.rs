//! kube-vip-cloud-provider's own test tables replayed through the index (issue #12, point 10).
//!
//! Each row cites the KVCP test (`pkg/provider/loadBalancer_test.go`,
//! kube-vip/kube-vip-cloud-provider) and its row name.

use super::kvcp::{labels, left_by_kvcp, load_balancer_ip, policy, run};
use super::*;

/// Test_discoverVIPs, Test_DiscoveryAddressCIDR and Test_DiscoveryAddressRange: a pool, the
/// addresses Services hold already, a new Service's family policy; the addresses it gets
/// (`None`: KVCP returns an error, FerroLB a False condition). The rows with
/// `preferredIpv4ServiceIP` are KVCP's sharing, which picks an address in map order; FerroLB
/// picks the lowest joinable one (see the differences table), so they are not repeated.
#[test]
fn kvcp_discover_vips_rows_give_the_same_addresses() {
    type Row<'a> = (
        &'a str,
        &'a str,
        Option<&'a str>,
        &'a [&'a str],
        &'a [&'a str],
        Option<&'a str>,
    );
    let four_v4: &[&str] = &["10.10.10.8", "10.10.10.9", "10.10.10.10", "10.10.10.12"];
    let three_v6: &[&str] = &["fd00::1", "fd00::2", "fd00::4"];
    let v4_range = "10.10.10.8-10.10.10.15";
    let v6_range = "fd00::1-fd00::10";
    let dual = "10.10.10.8-10.10.10.15,fd00::1-fd00::10";
    let small_dual = "10.10.10.8-10.10.10.9,fd00::1-fd00::2";
    let v4v6: &[&str] = &["IPv4", "IPv6"];
    let v6v4: &[&str] = &["IPv6", "IPv4"];
    let prefer = Some("PreferDualStack");
    let require = Some("RequireDualStack");
    let single = Some("SingleStack");
    let rows: &[Row<'_>] = &[
        (
            "Test_discoverVIPs/IPv4 pool",
            v4_range,
            None,
            &[],
            four_v4,
            Some("10.10.10.11"),
        ),
        (
            "Test_discoverVIPs/IPv4 pool with IPv4 service",
            v4_range,
            single,
            &["IPv4"],
            four_v4,
            Some("10.10.10.11"),
        ),
        (
            "Test_discoverVIPs/IPv6 pool",
            v6_range,
            None,
            &[],
            three_v6,
            Some("fd00::3"),
        ),
        (
            "Test_discoverVIPs/IPv6 pool with IPv6 service",
            v6_range,
            single,
            &["IPv6"],
            three_v6,
            Some("fd00::3"),
        ),
        (
            "Test_discoverVIPs/IPv6 pool with IPv4 service",
            v6_range,
            single,
            &["IPv4"],
            &[],
            None,
        ),
        (
            "Test_discoverVIPs/IPv4 pool with IPv6 service",
            v4_range,
            single,
            &["IPv6"],
            &[],
            None,
        ),
        (
            "Test_discoverVIPs/IPv4 pool with PreferDualStack service",
            v4_range,
            prefer,
            v4v6,
            four_v4,
            Some("10.10.10.11"),
        ),
        (
            "Test_discoverVIPs/IPv6 pool with PreferDualStack service",
            v6_range,
            prefer,
            v4v6,
            three_v6,
            Some("fd00::3"),
        ),
        (
            "Test_discoverVIPs/dualstack pool with PreferDualStack service with no IP families explicitly specified",
            dual,
            prefer,
            &[],
            &[],
            Some("10.10.10.8,fd00::1"),
        ),
        (
            "Test_discoverVIPs/dualstack pool with PreferDualStack IPv4,IPv6 service",
            dual,
            prefer,
            v4v6,
            &[],
            Some("10.10.10.8,fd00::1"),
        ),
        (
            "Test_discoverVIPs/dualstack pool with PreferDualStack IPv6,IPv4 service",
            dual,
            prefer,
            v6v4,
            &[],
            Some("fd00::1,10.10.10.8"),
        ),
        (
            "Test_discoverVIPs/dualstack pool with PreferDualStack IPv4,IPv6 service, but the IPv6 pool has no available addresses",
            small_dual,
            prefer,
            v4v6,
            &["fd00::1", "fd00::2"],
            Some("10.10.10.8"),
        ),
        (
            "Test_discoverVIPs/dualstack pool with PreferDualStack IPv4,IPv6 service, but the IPv4 pool has no available addresses",
            small_dual,
            prefer,
            v4v6,
            &["10.10.10.8", "10.10.10.9"],
            Some("fd00::1"),
        ),
        (
            "Test_discoverVIPs/dualstack pool with PreferDualStack IPv4,IPv6 service, but no pools have available addresses",
            small_dual,
            prefer,
            v4v6,
            &["10.10.10.8", "10.10.10.9", "fd00::1", "fd00::2"],
            None,
        ),
        // KVCP fails the whole pool; FerroLB reports the bad item and uses the rest (see
        // the differences table).
        (
            "Test_discoverVIPs/dualstack pool with PreferDualStack IPv4,IPv6 service, but there is an invalid pool",
            "10.10.10.8-10.10.10.9,fd00::1-fd00::2,invalid-pool",
            prefer,
            v4v6,
            &[],
            Some("10.10.10.8,fd00::1"),
        ),
        (
            "Test_discoverVIPs/IPv4 pool with RequireDualStack service",
            v4_range,
            require,
            v4v6,
            &[],
            None,
        ),
        (
            "Test_discoverVIPs/IPv6 pool with RequireDualStack service",
            v6_range,
            require,
            v4v6,
            &[],
            None,
        ),
        (
            "Test_discoverVIPs/empty pool with RequireDualStack service",
            "",
            require,
            v4v6,
            &[],
            None,
        ),
        (
            "Test_discoverVIPs/dualstack pool with RequireDualStack IPv4,IPv6 service",
            dual,
            require,
            v4v6,
            &[],
            Some("10.10.10.8,fd00::1"),
        ),
        (
            "Test_discoverVIPs/dualstack pool with RequireDualStack IPv6,IPv4 service",
            dual,
            require,
            v6v4,
            &[],
            Some("fd00::1,10.10.10.8"),
        ),
        (
            "Test_discoverVIPs/dualstack pool with RequireDualStack IPv4,IPv6 service, but the IPv6 pool has no available addresses",
            small_dual,
            require,
            v4v6,
            &["fd00::1", "fd00::2"],
            None,
        ),
        (
            "Test_discoverVIPs/dualstack pool with RequireDualStack IPv4,IPv6 service, but the IPv4 pool has no available addresses",
            small_dual,
            require,
            v4v6,
            &["10.10.10.8", "10.10.10.9"],
            None,
        ),
        (
            "Test_discoverVIPs/dualstack pool with RequireDualStack IPv4,IPv6 service, but no pools have available addresses",
            small_dual,
            require,
            v4v6,
            &["10.10.10.8", "10.10.10.9", "fd00::1", "fd00::2"],
            None,
        ),
        (
            "Test_DiscoveryAddressCIDR/available ip search for known namespace",
            "10.10.10.8/29",
            None,
            &[],
            four_v4,
            Some("10.10.10.11"),
        ),
        (
            "Test_DiscoveryAddressCIDR/available ip search for unknown namespace",
            "192.168.1.1/24",
            None,
            &[],
            &[
                "10.10.10.8",
                "172.16.0.3",
                "192.168.1.1",
                "10.10.10.9",
                "10.10.10.10",
                "172.16.0.4",
                "192.168.1.2",
                "10.10.10.12",
            ],
            Some("192.168.1.3"),
        ),
        (
            "Test_DiscoveryAddressCIDR/ipv6, available ip search for known namespace",
            "fe80::10/126",
            None,
            &[],
            &["fe80::10", "fe80::11", "fe80::12"],
            Some("fe80::13"),
        ),
        (
            "Test_DiscoveryAddressRange/available ip search for known namespace",
            v4_range,
            None,
            &[],
            four_v4,
            Some("10.10.10.11"),
        ),
        (
            "Test_DiscoveryAddressRange/available ip search for unknown namespace",
            "192.168.1.1-192.168.1.254",
            None,
            &[],
            &[
                "10.10.10.8",
                "172.16.0.3",
                "192.168.1.1",
                "10.10.10.9",
                "10.10.10.10",
                "172.16.0.4",
                "192.168.1.2",
                "10.10.10.12",
            ],
            Some("192.168.1.3"),
        ),
        (
            "Test_DiscoveryAddressRange/available ip search for known namespace (IPv6)",
            "fe80::ffff-fe80::1:3",
            None,
            &[],
            &["fe80::ffff", "fe80::1:0", "fe80::1:1"],
            Some("fe80::1:2"),
        ),
    ];
    for (kvcp_test, pool, family_policy, families, existing, want) in rows {
        // The pool under a `cidr-` or `range-` key as KVCP's value decides (point 1 makes
        // either key work); Services already holding addresses are KVCP's.
        let key = if pool.contains('/') {
            "cidr-global"
        } else {
            "range-global"
        };
        let mut services: Vec<Service> = existing
            .iter()
            .enumerate()
            .map(|(i, address)| {
                left_by_kvcp(
                    "discover-vips-test-ns",
                    &format!("held-{i}"),
                    1,
                    Some(address),
                    None,
                )
            })
            .collect();
        services.push(policy(
            service("discover-vips-test-ns", "new", 2),
            *family_policy,
            families,
        ));
        let (_, after, _) = run(settings(), Some(&[(key, pool)]), services);
        let new = &after["new"];
        match want {
            Some(addresses) => {
                assert_eq!(
                    annotation(new, "kube-vip.io/loadbalancerIPs").as_deref(),
                    Some(*addresses),
                    "{kvcp_test}"
                );
                assert_eq!(condition(new).0, "True", "{kvcp_test}");
            }
            None => {
                assert_eq!(
                    annotation(new, "kube-vip.io/loadbalancerIPs"),
                    None,
                    "{kvcp_test}"
                );
                assert_eq!(condition(new).0, "False", "{kvcp_test}");
            }
        }
        // Nothing KVCP left behind changed.
        for (i, address) in existing.iter().enumerate() {
            let held = &after[&format!("held-{i}")];
            assert_eq!(
                annotation(held, "kube-vip.io/loadbalancerIPs").as_deref(),
                Some(*address),
                "{kvcp_test}: held-{i}"
            );
        }
    }
}

/// Test_syncLoadBalancer: a Service before, the ConfigMap, the fields after (labels, the
/// `kube-vip.io/*` annotations, spec.loadBalancerIP).
#[test]
fn kvcp_sync_load_balancer_rows_write_the_same_fields() {
    struct Row<'a> {
        kvcp_test: &'a str,
        before: Service,
        config: Option<&'a [(&'a str, &'a str)]>,
        unchecked: bool,
        labels: &'a [(&'a str, &'a str)],
        ips: &'a str,
        interface: Option<&'a str>,
        load_balancer_ip: Option<&'a str>,
    }
    let mut legacy = left_by_kvcp("test", "name", 1, None, Some("192.168.1.1"));
    if let Some(labels) = legacy.metadata.labels.as_mut() {
        labels.insert("ipam-address".into(), "192.168.1.1".into());
    }
    let kube_vip: &[(&str, &str)] = &[("implementation", "kube-vip")];
    let rows = [
        Row {
            kvcp_test: "Test_syncLoadBalancer/add new annotation to legacy service which already has spec.loadbalancerIP, remove legacy label",
            before: legacy,
            config: None,
            unchecked: false,
            labels: kube_vip,
            ips: "192.168.1.1",
            interface: None,
            load_balancer_ip: Some("192.168.1.1"),
        },
        Row {
            kvcp_test: "Test_syncLoadBalancer/add new annotation and loadbalancerIP to new service",
            before: service("test", "name", 1),
            config: Some(&[("cidr-global", "192.168.1.1/24")]),
            unchecked: false,
            labels: kube_vip,
            ips: "192.168.1.1",
            interface: None,
            load_balancer_ip: Some("192.168.1.1"),
        },
        // A request outside every pool: KVCP takes it unchecked, and so does FerroLB with
        // `--requested-addresses=unchecked` (by default it is refused and reported).
        Row {
            kvcp_test: "Test_syncLoadBalancer/add new annotation to new service which doesn't have spec.loadbalancerIP, doesn't add spec.loadbalancerIP",
            before: annotated(
                service("test", "name", 1),
                "kube-vip.io/loadbalancerIPs",
                "192.168.1.1",
            ),
            config: None,
            unchecked: true,
            labels: kube_vip,
            ips: "192.168.1.1",
            interface: None,
            load_balancer_ip: None,
        },
        Row {
            kvcp_test: "Test_syncLoadBalancer/ipv6, add new annotation and loadbalancerIP to new service",
            before: service("test", "name", 1),
            config: Some(&[("cidr-global", "fe80::10/126")]),
            unchecked: false,
            labels: kube_vip,
            ips: "fe80::10",
            interface: None,
            load_balancer_ip: Some("fe80::10"),
        },
        Row {
            kvcp_test: "Test_syncLoadBalancer/dualstack loadbalancer",
            before: policy(
                service("test", "name", 1),
                Some("RequireDualStack"),
                &["IPv6", "IPv4"],
            ),
            config: Some(&[("cidr-global", "10.120.120.1/24,fe80::10/126")]),
            unchecked: false,
            labels: kube_vip,
            ips: "fe80::10,10.120.120.1",
            interface: None,
            load_balancer_ip: Some("fe80::10"),
        },
        Row {
            kvcp_test: "Test_syncLoadBalancer/service interface defined in global, service gets the interface config",
            before: service("test", "name", 1),
            config: Some(&[
                ("cidr-global", "192.168.1.1/24"),
                ("interface-global", "eth0"),
            ]),
            unchecked: false,
            labels: kube_vip,
            ips: "192.168.1.1",
            interface: Some("eth0"),
            load_balancer_ip: Some("192.168.1.1"),
        },
        Row {
            kvcp_test: "Test_syncLoadBalancer/service interface defined in service's namespace, service gets the interface config",
            before: service("test", "name", 1),
            config: Some(&[
                ("cidr-global", "192.168.1.1/24"),
                ("interface-test", "eth0"),
            ]),
            unchecked: false,
            labels: kube_vip,
            ips: "192.168.1.1",
            interface: Some("eth0"),
            load_balancer_ip: Some("192.168.1.1"),
        },
        Row {
            kvcp_test: "Test_syncLoadBalancer/service interface not defined in service's namespace, service doesn't get the interface config",
            before: service("test", "name", 1),
            config: Some(&[
                ("cidr-global", "192.168.1.1/24"),
                ("interface-what", "eth0"),
            ]),
            unchecked: false,
            labels: kube_vip,
            ips: "192.168.1.1",
            interface: None,
            load_balancer_ip: Some("192.168.1.1"),
        },
    ];
    for row in rows {
        let settings = IndexSettings {
            requests_unchecked: row.unchecked,
            ..settings()
        };
        let (mut index, after, _) = run(settings, row.config, vec![row.before]);
        let svc = &after["name"];
        let want: BTreeMap<String, String> = row
            .labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(labels(svc), want, "{}", row.kvcp_test);
        assert_eq!(
            annotation(svc, "kube-vip.io/loadbalancerIPs").as_deref(),
            Some(row.ips),
            "{}",
            row.kvcp_test
        );
        assert_eq!(
            annotation(svc, "kube-vip.io/serviceInterface").as_deref(),
            row.interface,
            "{}",
            row.kvcp_test
        );
        assert_eq!(
            load_balancer_ip(svc).as_deref(),
            row.load_balancer_ip,
            "{}",
            row.kvcp_test
        );
        assert_eq!(condition(svc).0, "True", "{}", row.kvcp_test);
        assert!(
            index.apply_service(svc).is_empty(),
            "{}: stable",
            row.kvcp_test
        );
    }
}
