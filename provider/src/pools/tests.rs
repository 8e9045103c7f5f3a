//! Table tests: ConfigMap data in, pools / errors / warnings out.

use std::collections::BTreeMap;

use super::*;

/// (ConfigMap data, namespace, the ranges its pool must have).
type FormCase<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a [&'a str]);

/// ConfigMap data as (key, value) pairs.
type Data<'a> = &'a [(&'a str, &'a str)];

const SOURCE: &str = "kube-system/kubevip";

fn parse(entries: &[(&str, &str)]) -> ParsedConfig {
    let data: BTreeMap<String, String> = entries
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    parse_config(SOURCE, &data)
}

/// The ranges of the pool `namespace` uses, as `a-b` strings.
fn ranges_for(parsed: &ParsedConfig, namespace: &str) -> Vec<String> {
    parsed
        .pools
        .pool_for_namespace(namespace)
        .map(|p| p.ranges.iter().map(ToString::to_string).collect())
        .unwrap_or_default()
}

fn messages<T: ToString>(items: &[T]) -> Vec<String> {
    items.iter().map(ToString::to_string).collect()
}

#[test]
fn every_address_form_parses_into_merged_ranges() {
    let table: &[FormCase<'_>] = &[
        // The seed's examples.
        (
            &[("cidr-default", "192.168.0.200/29")],
            "default",
            &["192.168.0.200-192.168.0.207"],
        ),
        (
            &[("cidr-development", "192.168.0.210/29")],
            "development",
            &["192.168.0.208-192.168.0.215"],
        ),
        (
            &[("cidr-finance", "192.168.0.220/29")],
            "finance",
            &["192.168.0.216-192.168.0.223"],
        ),
        (
            &[("cidr-testing", "192.168.0.230/29")],
            "testing",
            &["192.168.0.224-192.168.0.231"],
        ),
        (
            &[("cidr-ipv6", "2001::10/127")],
            "ipv6",
            &["2001::10-2001::11"],
        ),
        (
            &[("cidr-global", "192.168.0.220/29")],
            "any",
            &["192.168.0.216-192.168.0.223"],
        ),
        (
            &[("range-global", "192.168.0.200-192.168.0.202")],
            "any",
            &["192.168.0.200-192.168.0.202"],
        ),
        (
            &[("cidr-global", "192.168.0.200/30,192.168.0.200/29")],
            "x",
            &["192.168.0.200-192.168.0.207"],
        ),
        (
            &[("cidr-global", "2001::12/127,2001::10/127")],
            "x",
            &["2001::10-2001::13"],
        ),
        (
            &[(
                "range-global",
                "192.168.0.10-192.168.0.11,192.168.0.10-192.168.0.13",
            )],
            "x",
            &["192.168.0.10-192.168.0.13"],
        ),
        (
            &[("range-global", "2001::10-2001::14,2001::20-2001::24")],
            "x",
            &["2001::10-2001::14", "2001::20-2001::24"],
        ),
        (
            &[("cidr-global", "192.168.0.200/30,2001::10/127")],
            "x",
            &["192.168.0.200-192.168.0.203", "2001::10-2001::11"],
        ),
        (
            &[(
                "range-default",
                "192.168.0.10-192.168.0.11,2001::10-2001::11",
            )],
            "default",
            &["192.168.0.10-192.168.0.11", "2001::10-2001::11"],
        ),
        // Non-canonical CIDR is masked; whitespace everywhere is tolerated.
        (
            &[("cidr-web", " 192.168.0.10/24 ")],
            "web",
            &["192.168.0.0-192.168.0.255"],
        ),
        (
            &[(
                "range-web",
                " 198.51.100.1 - 198.51.100.9 ,\t2001:db8::1-2001:db8::2 ",
            )],
            "web",
            &["198.51.100.1-198.51.100.9", "2001:db8::1-2001:db8::2"],
        ),
        // Touching ranges merge; IPv6 sorts after IPv4 whatever the input order.
        (
            &[(
                "range-web",
                "2001:db8::5-2001:db8::6,203.0.113.5-203.0.113.9,203.0.113.10-203.0.113.12",
            )],
            "web",
            &["203.0.113.5-203.0.113.12", "2001:db8::5-2001:db8::6"],
        ),
        // Big pools stay one range.
        (
            &[("cidr-big", "10.0.0.0/8")],
            "big",
            &["10.0.0.0-10.255.255.255"],
        ),
        (
            &[("cidr-v6", "2001:db8:1::/48")],
            "v6",
            &["2001:db8:1::-2001:db8:1:ffff:ffff:ffff:ffff:ffff"],
        ),
        (
            &[("cidr-v6", "2001:db8::/64")],
            "v6",
            &["2001:db8::-2001:db8::ffff:ffff:ffff:ffff"],
        ),
        // A namespace's pool is the union of its cidr- and range- keys.
        (
            &[
                ("cidr-web", "192.0.2.0/30"),
                ("range-web", "192.0.2.10-192.0.2.11"),
            ],
            "web",
            &["192.0.2.0-192.0.2.3", "192.0.2.10-192.0.2.11"],
        ),
        // The global pool is the union of cidr-global and range-global.
        (
            &[
                ("cidr-global", "192.0.2.0/30"),
                ("range-global", "192.0.2.10-192.0.2.11"),
            ],
            "any",
            &["192.0.2.0-192.0.2.3", "192.0.2.10-192.0.2.11"],
        ),
        // Unlike kube-vip-cloud-provider, cidr-global never wins over range-<ns>.
        (
            &[
                ("cidr-global", "192.0.2.0/24"),
                ("range-web", "198.51.100.1-198.51.100.2"),
            ],
            "web",
            &["198.51.100.1-198.51.100.2"],
        ),
        (
            &[
                ("cidr-global", "192.0.2.0/24"),
                ("range-web", "198.51.100.1-198.51.100.2"),
            ],
            "other",
            &["192.0.2.0-192.0.2.255"],
        ),
        // skip-end-ips-in-cidr drops network/broadcast of each listed IPv4 CIDR, not of /31,
        // /32, ranges or IPv6.
        (
            &[
                ("skip-end-ips-in-cidr", "true"),
                (
                    "cidr-web",
                    "192.0.2.0/25,192.0.2.128/25,198.51.100.0/31,203.0.113.7/32,2001:db8::/127",
                ),
                ("range-web", "203.0.113.20-203.0.113.30"),
            ],
            "web",
            &[
                "192.0.2.1-192.0.2.126",
                "192.0.2.129-192.0.2.254",
                "198.51.100.0-198.51.100.1",
                "203.0.113.7-203.0.113.7",
                "203.0.113.20-203.0.113.30",
                "2001:db8::-2001:db8::1",
            ],
        ),
        // Per-namespace skip-end overrides the global one.
        (
            &[
                ("skip-end-ips-in-cidr", "true"),
                ("skip-end-ips-in-cidr-web", "false"),
                ("cidr-web", "192.0.2.0/30"),
            ],
            "web",
            &["192.0.2.0-192.0.2.3"],
        ),
        (
            &[
                ("skip-end-ips-in-cidr-web", "true"),
                ("cidr-web", "192.0.2.0/30"),
            ],
            "web",
            &["192.0.2.1-192.0.2.2"],
        ),
    ];
    for (data, namespace, expected) in table {
        let parsed = parse(data);
        assert_eq!(parsed.errors, vec![], "{data:?}");
        assert_eq!(ranges_for(&parsed, namespace), *expected, "{data:?}");
    }
}

#[test]
fn settings_follow_namespace_then_global_then_default() {
    let parsed = parse(&[
        ("cidr-global", "192.0.2.0/24"),
        ("cidr-web", "198.51.100.0/24"),
        ("cidr-db", "203.0.113.0/24"),
        ("search-order", "desc"),
        ("search-order-db", "asc"),
        ("allow-share-global", "true"),
        ("allow-share-db", "false"),
        ("interface-global", "eth0"),
        ("interface-web", "bond0.100"),
        ("interface-apps", "eth9"),
        ("avoid-buggy-ips", "false"),
        ("avoid-buggy-ips-web", "true"),
    ]);
    assert_eq!(parsed.errors, vec![]);
    let pools = &parsed.pools;
    let web = pools.pool_for_namespace("web").expect("web pool");
    let db = pools.pool_for_namespace("db").expect("db pool");
    let global = pools.pool_for_namespace("apps").expect("global pool");
    assert_eq!(
        (web.name.as_str(), db.name.as_str(), global.name.as_str()),
        ("web", "db", "global")
    );
    assert_eq!(web.search_order, SearchOrder::Descending);
    assert_eq!(db.search_order, SearchOrder::Ascending);
    assert_eq!(global.search_order, SearchOrder::Descending);
    assert!(web.allow_share && !db.allow_share && global.allow_share);
    assert_eq!(web.interface.as_deref(), Some("bond0.100"));
    assert_eq!(db.interface.as_deref(), Some("eth0"));
    assert!(web.avoid_buggy_ips && !db.avoid_buggy_ips && !global.avoid_buggy_ips);
    // interface-<ns> applies even to a namespace that uses the global pool.
    assert_eq!(pools.interface_for_namespace("apps"), Some("eth9"));
    assert_eq!(pools.interface_for_namespace("other"), Some("eth0"));
    assert_eq!(pools.pools().count(), 3);
}

#[test]
fn defaults_are_ascending_unshared_and_avoid_dot_zero_and_dot_255() {
    let parsed = parse(&[("cidr-web", "192.0.2.0/24")]);
    let pool = parsed.pools.pool_for_namespace("web").expect("pool");
    assert_eq!(pool.search_order, SearchOrder::Ascending);
    assert!(!pool.allow_share && !pool.skip_end_ips_in_cidr && pool.avoid_buggy_ips && !pool.dhcp);
    assert_eq!(pool.interface, None);
    assert_eq!(parsed.pools.pool_for_namespace("other"), None);
}

#[test]
fn the_entry_0_0_0_0_slash_32_makes_the_ipv4_side_of_a_pool_dhcp() {
    let parsed = parse(&[("cidr-web", " 0.0.0.0/32 "), ("cidr-global", "0.0.0.0/32")]);
    assert!(parsed.pools.pool_for_namespace("web").expect("web").dhcp);
    assert!(parsed.pools.pool_for_namespace("any").expect("global").dhcp);
    assert_eq!((parsed.errors.len(), parsed.warnings.len()), (0, 0));

    // Per family, as in kube-vip-cloud-provider (it splits the value by family and checks
    // whether the IPv4 part is `0.0.0.0/32`): IPv6 entries beside it are a normal pool.
    let dual = parse(&[("cidr-web", "0.0.0.0/32,2001:db8::/126")]);
    let web = dual.pools.pool_for_namespace("web").expect("web");
    assert!(web.dhcp && web.has_family(crate::ipam::IpFamily::V4));
    assert_eq!(ranges_for(&dual, "web"), ["2001:db8::-2001:db8::3"]);
    assert_eq!((dual.errors.len(), dual.warnings.len()), (0, 0));

    // Beside other IPv4 entries it is not DHCP in KVCP either (the IPv4 part is not exactly
    // `0.0.0.0/32`; 0.0.0.0 itself is a `.0` address it never hands out).
    let mixed = parse(&[("cidr-web", "0.0.0.0/32,192.0.2.0/30")]);
    let web = mixed.pools.pool_for_namespace("web").expect("web");
    assert!(!web.dhcp);
    assert_eq!(ranges_for(&mixed, "web"), ["192.0.2.0-192.0.2.3"]);
    assert_eq!(
        messages(&mixed.warnings),
        [
            "ConfigMap kube-system/kubevip key `cidr-web`: `0.0.0.0/32` (DHCP) is combined with \
          other IPv4 entries of the same pool; as with kube-vip-cloud-provider, IPv4 addresses \
          come from those entries and DHCP is not used"
        ]
    );
}

/// kube-vip-cloud-provider reads a value with a `/` as CIDRs and anything else as ranges,
/// whatever the key. Rows cite the KVCP test (pkg/provider/loadBalancer_test.go) they come
/// from.
#[test]
fn the_value_decides_the_form_not_the_key() {
    // (KVCP test, ConfigMap data, namespace, its ranges, expected warning or "")
    let table: &[(&str, Data<'_>, &str, &[&str], &str)] = &[
        (
            "Test_DiscoveryPoolRange/ipv6, range lookup for known namespace",
            &[("cidr-ipv6", "2001::10-2001::20")],
            "ipv6",
            &["2001::10-2001::20"],
            "key `cidr-ipv6`: `2001::10-2001::20` is a range; used as written, as \
             kube-vip-cloud-provider does (such entries usually go under `range-ipv6`)",
        ),
        (
            "Test_DiscoveryPoolCIDR/cidr lookup for known namespace",
            &[("cidr-system", "10.10.10.8/29")],
            "system",
            &["10.10.10.8-10.10.10.15"],
            "",
        ),
        (
            "Test_DiscoveryPoolRange/range lookup for known namespace",
            &[("range-system", "10.10.10.8-10.10.10.15")],
            "system",
            &["10.10.10.8-10.10.10.15"],
            "",
        ),
        (
            "issue #12: a range under cidr-",
            &[("cidr-web", "192.0.2.10-192.0.2.20")],
            "web",
            &["192.0.2.10-192.0.2.20"],
            "key `cidr-web`: `192.0.2.10-192.0.2.20` is a range; used as written, as \
             kube-vip-cloud-provider does (such entries usually go under `range-web`)",
        ),
        (
            "issue #12: a CIDR under range-",
            &[("range-web", "192.0.2.8/29")],
            "web",
            &["192.0.2.8-192.0.2.15"],
            "key `range-web`: `192.0.2.8/29` is a CIDR; used as written, as \
             kube-vip-cloud-provider does (such entries usually go under `cidr-web`)",
        ),
        (
            "issue #12: both forms in one value (KVCP refuses it; we take both)",
            &[("range-global", "192.0.2.8/30,192.0.2.20-192.0.2.21")],
            "any",
            &["192.0.2.8-192.0.2.11", "192.0.2.20-192.0.2.21"],
            "key `range-global`: `192.0.2.8/30` is a CIDR; used as written, as \
             kube-vip-cloud-provider does (such entries usually go under `cidr-global`)",
        ),
    ];
    for (kvcp_test, data, namespace, ranges, warning) in table {
        let parsed = parse(data);
        assert_eq!(parsed.errors, vec![], "{kvcp_test}");
        assert_eq!(ranges_for(&parsed, namespace), *ranges, "{kvcp_test}");
        let expected: Vec<String> = if warning.is_empty() {
            Vec::new()
        } else {
            vec![format!("ConfigMap kube-system/kubevip {warning}")]
        };
        assert_eq!(messages(&parsed.warnings), expected, "{kvcp_test}");
    }
}

/// `allow-share-<ns>` counts for a namespace on the global pool, as in KVCP's
/// `discoverPool` (Test_DiscoveryPoolCIDR: `allow-share-system` is read with the pool).
#[test]
fn allow_share_of_a_namespace_on_the_global_pool_is_honoured() {
    let parsed = parse(&[
        ("cidr-global", "192.0.2.0/24"),
        ("allow-share-web", "True"),
        ("allow-share-db", "0"),
    ]);
    assert!(parsed.pools.allow_share_for("web"));
    assert!(!parsed.pools.allow_share_for("db"));
    assert!(!parsed.pools.allow_share_for("other"));
    assert!(
        !messages(&parsed.warnings)
            .iter()
            .any(|w| w.contains("has no effect")),
        "{:?}",
        messages(&parsed.warnings)
    );
    let global_on = parse(&[
        ("cidr-global", "192.0.2.0/24"),
        ("allow-share-global", "t"),
        ("allow-share-db", "F"),
    ]);
    assert!(global_on.pools.allow_share_for("other"));
    assert!(!global_on.pools.allow_share_for("db"));
}

/// Every boolean key takes Go's `strconv.ParseBool` forms, as KVCP's `allow-share-*`.
#[test]
fn boolean_keys_take_go_parse_bool_forms() {
    for (text, on) in [
        ("1", true),
        ("t", true),
        ("T", true),
        ("TRUE", true),
        ("true", true),
        ("True", true),
        ("0", false),
        ("f", false),
        ("F", false),
        ("FALSE", false),
        ("false", false),
        ("False", false),
    ] {
        let parsed = parse(&[
            ("cidr-web", "192.0.2.0/30"),
            ("allow-share-web", text),
            ("skip-end-ips-in-cidr-web", text),
            ("avoid-buggy-ips-web", text),
        ]);
        assert_eq!(parsed.errors, vec![], "{text}");
        let pool = parsed.pools.pool_for_namespace("web").expect("web");
        assert_eq!(
            (
                pool.allow_share,
                pool.skip_end_ips_in_cidr,
                pool.avoid_buggy_ips
            ),
            (on, on, on),
            "{text}"
        );
    }
}

/// Where new Services get addresses differently than with kube-vip-cloud-provider, a
/// warning names the key (issue #12, point 8).
#[test]
fn differences_from_kvcp_are_warned_per_key() {
    // (ConfigMap data, the key warned about, a phrase of the warning)
    let table: &[(Data<'_>, &str, &str)] = &[
        (
            &[
                ("cidr-global", "192.0.2.0/24"),
                ("range-web", "198.51.100.1-198.51.100.9"),
            ],
            "range-web",
            "gives Services of namespace `web` addresses from `cidr-global`",
        ),
        (
            &[
                ("cidr-web", "192.0.2.0/24"),
                ("range-web", "198.51.100.1-198.51.100.9"),
            ],
            "range-web",
            "uses only `cidr-web` for namespace `web` and ignores this key",
        ),
        (
            &[
                ("cidr-global", "192.0.2.0/24"),
                ("range-global", "198.51.100.1-198.51.100.9"),
            ],
            "range-global",
            "uses only `cidr-global` for the global pool",
        ),
        (
            &[("cidr-web", "192.0.2.0/24"), ("search-order-web", "desc")],
            "search-order-web",
            "reads only the global `search-order`",
        ),
        (
            &[
                ("cidr-global", "192.0.2.0/24"),
                ("search-order-global", "desc"),
            ],
            "search-order-global",
            "reads only `search-order`",
        ),
        (
            &[
                ("cidr-global", "192.0.2.0/24"),
                ("avoid-buggy-ips", "false"),
            ],
            "avoid-buggy-ips",
            "always skips IPv4 addresses ending in .0 or .255",
        ),
        (
            &[
                ("cidr-global", "192.0.2.0/24"),
                ("skip-end-ips-in-cidr", "True"),
            ],
            "skip-end-ips-in-cidr",
            "only for the exact value `true`",
        ),
        (
            &[("cidr-global", "192.0.2.0/24"), ("allow-share-web", "true")],
            "allow-share-web",
            "join only addresses of Services whose namespace allows sharing too",
        ),
        (
            &[("cidr-web", "192.0.2.0/24"), ("allow-share-web", "true")],
            "allow-share-web",
            "also shares IPv6 addresses",
        ),
    ];
    for (data, key, phrase) in table {
        let parsed = parse(data);
        let differences: Vec<&ConfigWarning> = parsed
            .warnings
            .iter()
            .filter(|w| w.kind.is_kvcp_difference())
            .collect();
        assert_eq!(
            differences.len(),
            1,
            "{data:?}: {:?}",
            messages(&parsed.warnings)
        );
        assert_eq!(differences[0].key, *key, "{data:?}");
        assert!(
            differences[0].to_string().contains(phrase),
            "{data:?}: {}",
            differences[0]
        );
    }
    // What KVCP reads the same way is not warned about.
    for data in [
        &[("cidr-global", "192.0.2.0/24"), ("search-order", "desc")][..],
        &[
            ("range-web", "192.0.2.1-192.0.2.9"),
            ("range-global", "198.51.100.1-198.51.100.9"),
        ],
        &[
            ("cidr-web", "192.0.2.0/24"),
            ("skip-end-ips-in-cidr", "true"),
        ],
        &[("cidr-web", "192.0.2.0/24"), ("allow-share-web", "false")],
    ] {
        let parsed = parse(data);
        assert!(
            !parsed.warnings.iter().any(|w| w.kind.is_kvcp_difference()),
            "{data:?}: {:?}",
            messages(&parsed.warnings)
        );
    }
}

#[test]
fn every_malformed_entry_is_reported_with_key_and_text() {
    let table: &[(&str, &str, &str)] = &[
        (
            "range-web",
            "10.0.0.9-10.0.0.1",
            "`10.0.0.9-10.0.0.1` ends before it starts",
        ),
        (
            "range-web",
            "10.0.0.1-2001:db8::1",
            "`10.0.0.1-2001:db8::1` mixes IPv4 and IPv6",
        ),
        (
            "range-web",
            "10.0.0.1-10.0.0.300",
            "`10.0.0.300` is not an IP address",
        ),
        (
            "cidr-web",
            "10.0.0.0/33",
            "`10.0.0.0/33` has a prefix length that is not a number from 0 to 32",
        ),
        (
            "cidr-web",
            "2001:db8::/129",
            "`2001:db8::/129` has a prefix length that is not a number from 0 to 128",
        ),
        (
            "cidr-web",
            "10.0.0.0/x",
            "`10.0.0.0/x` has a prefix length that is not a number from 0 to 32",
        ),
        ("cidr-web", "10.0.0/24", "`10.0.0` is not an IP address"),
        (
            "cidr-web",
            "10.0.0.1",
            "`10.0.0.1` is neither a CIDR nor a `start-end` range; write `10.0.0.1-10.0.0.1` \
             for one address",
        ),
        (
            "range-web",
            "10.0.0.1",
            "`10.0.0.1` is neither a CIDR nor a `start-end` range; write `10.0.0.1-10.0.0.1` \
             for one address",
        ),
        (
            "cidr-web",
            "10.0.0.0/30,,10.0.1.0/30",
            "item 2 of `10.0.0.0/30,,10.0.1.0/30` is empty",
        ),
        (
            "cidr-web",
            "10.0.0.0/30,",
            "item 2 of `10.0.0.0/30,` is empty",
        ),
        ("cidr-web", "", "item 1 of `` is empty"),
        ("cidr-", "10.0.0.0/24", "the key names no namespace"),
        (
            "search-order",
            "descending",
            "`descending` is not valid here; expected `asc` or `desc`",
        ),
        (
            "allow-share-web",
            "yes please",
            "`yes please` is not valid here; expected `true` or `false`",
        ),
        (
            "skip-end-ips-in-cidr",
            "on",
            "`on` is not valid here; expected `true` or `false`",
        ),
        (
            "avoid-buggy-ips-web",
            "nope",
            "`nope` is not valid here; expected `true` or `false`",
        ),
        (
            "interface-web",
            "a-very-long-interface-name",
            "`a-very-long-interface-name` is not valid here; expected an interface name of 1 to 15 \
             characters without `/` or spaces",
        ),
        (
            "cdir-default",
            "10.0.0.0/24",
            "unknown key; did you mean `cidr-default`?",
        ),
        (
            "range_global",
            "10.0.0.1-10.0.0.2",
            "unknown key; did you mean `range-global`?",
        ),
        (
            "serch-order",
            "desc",
            "unknown key; did you mean `search-order`?",
        ),
        (
            "alow-share-web",
            "true",
            "unknown key; did you mean `allow-share-web`?",
        ),
    ];
    for (key, value, problem) in table {
        let parsed = parse(&[(key, value)]);
        let expected = format!("ConfigMap kube-system/kubevip key `{key}`: {problem}");
        assert_eq!(messages(&parsed.errors), [expected], "{key}: {value}");
        assert_eq!(parsed.errors[0].key, *key);
    }
}

#[test]
fn errors_name_the_namespace_they_affect() {
    let parsed = parse(&[
        ("range-web", "10.0.0.9-10.0.0.1"),
        ("cidr-global", "bad"),
        ("cdir-db", "10.0.0.0/24"),
    ]);
    let mut namespaces: Vec<Option<&str>> =
        parsed.errors.iter().map(ConfigError::namespace).collect();
    namespaces.sort();
    assert_eq!(namespaces, [None, Some("db"), Some("web")]);
}

#[test]
fn one_bad_entry_does_not_stop_the_rest() {
    let parsed = parse(&[
        ("cidr-web", "192.0.2.0/30, 10.0.0.0/99 ,198.51.100.0/30"),
        (
            "range-web",
            "203.0.113.9-203.0.113.1,203.0.113.20-203.0.113.21",
        ),
        ("cidr-db", "not-an-address"),
        ("cidr-global", "192.0.2.128/30"),
        ("search-order", "sideways"),
        ("unrelated-key", "kept out of our way"),
    ]);
    assert_eq!(parsed.errors.len(), 4, "{:#?}", messages(&parsed.errors));
    assert_eq!(
        ranges_for(&parsed, "web"),
        [
            "192.0.2.0-192.0.2.3",
            "198.51.100.0-198.51.100.3",
            "203.0.113.20-203.0.113.21"
        ]
    );
    // A namespace whose only entry is bad keeps an empty pool instead of silently taking
    // addresses from the global pool.
    let db = parsed.pools.pool_for_namespace("db").expect("db pool");
    assert_eq!((db.name.as_str(), db.ranges.len()), ("db", 0));
    assert_eq!(ranges_for(&parsed, "other"), ["192.0.2.128-192.0.2.131"]);
    assert_eq!(
        parsed
            .pools
            .pool_for_namespace("web")
            .expect("web")
            .search_order,
        SearchOrder::Ascending
    );
}

#[test]
fn overlaps_between_namespaces_are_warned_and_within_one_are_merged() {
    let parsed = parse(&[
        ("cidr-web", "192.0.2.0/28,192.0.2.8/29"),
        ("range-db", "192.0.2.10-192.0.2.20"),
        ("cidr-global", "198.51.100.0/24"),
    ]);
    assert_eq!(parsed.errors, vec![]);
    assert_eq!(ranges_for(&parsed, "web"), ["192.0.2.0-192.0.2.15"]);
    assert_eq!(
        messages(&parsed.warnings),
        [
            "ConfigMap kube-system/kubevip key `range-db`: overlaps `cidr-web` at \
          192.0.2.10-192.0.2.15; each address still goes to one Service only",
            "ConfigMap kube-system/kubevip key `range-db`: differs from kube-vip-cloud-provider: \
          kube-vip-cloud-provider gives Services of namespace `db` addresses from \
          `cidr-global` (it looks up `cidr-db`, `cidr-global`, `range-db`, `range-global` in \
          this order); FerroLB allocates from this key, the namespace's own"
        ]
    );
}

#[test]
fn per_namespace_settings_without_an_own_pool_are_warned() {
    let parsed = parse(&[
        ("cidr-global", "192.0.2.0/24"),
        ("search-order-web", "desc"),
    ]);
    assert_eq!(
        messages(&parsed.warnings),
        [
            "ConfigMap kube-system/kubevip key `search-order-web`: has no effect: namespace `web` \
          has no `cidr-web` or `range-web` and uses the global pool and its settings"
        ]
    );
    assert_eq!(
        parsed
            .pools
            .pool_for_namespace("web")
            .expect("global")
            .search_order,
        SearchOrder::Ascending
    );
}

#[test]
fn legacy_and_unrelated_keys_are_ignored() {
    let parsed = parse(&[
        ("kubevip-services", "{}"),
        ("description", "lab pools"),
        ("cidr-global", "192.0.2.0/24"),
    ]);
    assert_eq!((parsed.errors.len(), parsed.warnings.len()), (0, 0));
}
