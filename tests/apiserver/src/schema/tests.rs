//! Table tests of pruning, defaulting and validation against a pool-like schema.

use serde_json::{Value, json};

use super::*;

fn pool_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["blocks"],
                "properties": {
                    "blocks": {"type": "array", "minItems": 1, "maxItems": 2, "items": {
                        "type": "object",
                        "properties": {
                            "cidr": {"type": "string", "format": "cidr"},
                            "start": {"type": "string", "format": "ipv4"},
                        },
                    }},
                    "mode": {"type": "string", "enum": ["layer2", "bgp"], "default": "layer2"},
                    "priority": {"type": "integer", "minimum": 0, "maximum": 100},
                    "interface": {"type": "string", "pattern": "^[a-z0-9]+$", "maxLength": 15, "minLength": 1},
                    "port": {"x-kubernetes-int-or-string": true},
                    "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "note": {"type": "string", "nullable": true},
                    "bgp": {"type": "object", "default": {}, "properties": {
                        "localPref": {"type": "integer", "default": 100},
                    }},
                },
            },
            "status": {"type": "object", "properties": {"used": {"type": "integer"}}},
        },
    })
}

fn rendered(errors: &[FieldError]) -> Vec<String> {
    errors.iter().map(ToString::to_string).collect()
}

#[test]
fn prune_drops_unknown_fields_and_keeps_preserved_ones() {
    let mut obj = json!({"apiVersion": "x/v1", "kind": "P", "metadata": {"name": "a", "anything": 1},
        "spec": {"blocks": [{"cidr": "192.0.2.0/24", "bogus": 1}], "typo": true,
                 "extra": {"free": {"form": 1}}, "labels": {"a": "b"}, "note": null, "mode": null},
        "top": 1});
    prune(&pool_schema(), &mut obj);
    assert_eq!(
        obj,
        json!({"apiVersion": "x/v1", "kind": "P", "metadata": {"name": "a", "anything": 1},
            "spec": {"blocks": [{"cidr": "192.0.2.0/24"}], "extra": {"free": {"form": 1}},
                     "labels": {"a": "b"}, "note": null, "mode": null}})
    );
    assert_eq!(
        unknown_fields(
            &pool_schema(),
            &json!({"spec": {"typo": 1, "blocks": [{"x": 1}], "extra": {"y": 1}}})
        ),
        [".spec.blocks[0].x", ".spec.typo"]
    );
}

#[test]
fn defaults_fill_missing_and_null_fields_top_down() {
    let mut obj = json!({"spec": {"blocks": [], "mode": null}});
    apply_defaults(&pool_schema(), &mut obj);
    assert_eq!(obj["spec"]["mode"], "layer2");
    assert_eq!(
        obj["spec"]["bgp"],
        json!({"localPref": 100}),
        "a defaulted object gets nested defaults"
    );
    let mut set = json!({"spec": {"mode": "bgp", "bgp": {"localPref": 5}}});
    apply_defaults(&pool_schema(), &mut set);
    assert_eq!(set["spec"], json!({"mode": "bgp", "bgp": {"localPref": 5}}));
}

#[test]
fn violations_read_like_kube_apiserver() {
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({"spec": {}}), vec!["spec.blocks: Required value"]),
        (
            json!({"spec": {"blocks": [{"cidr": "192.0.2.0/33"}]}}),
            vec![
                r#"spec.blocks[0].cidr: Invalid value: "192.0.2.0/33": spec.blocks[0].cidr in body must be of type cidr: "192.0.2.0/33""#,
            ],
        ),
        (
            json!({"spec": {"blocks": [{"start": "2001:db8::1"}]}}),
            vec![
                r#"spec.blocks[0].start: Invalid value: "2001:db8::1": spec.blocks[0].start in body must be of type ipv4: "2001:db8::1""#,
            ],
        ),
        (
            json!({"spec": {"blocks": [], "mode": "vip"}}),
            vec![
                "spec.blocks: Invalid value: []interface {}{...}: spec.blocks in body should have at least 1 items",
                r#"spec.mode: Unsupported value: "vip": supported values: "layer2", "bgp""#,
            ],
        ),
        (
            json!({"spec": {"blocks": [{}, {}, {}]}}),
            vec!["spec.blocks: Too many: 3: must have at most 2 items"],
        ),
        (
            json!({"spec": {"blocks": [{}], "priority": "high"}}),
            vec![
                r#"spec.priority: Invalid value: "string": spec.priority in body must be of type integer: "string""#,
            ],
        ),
        (
            json!({"spec": {"blocks": [{}], "priority": 101}}),
            vec![
                "spec.priority: Invalid value: 101: spec.priority in body should be less than or equal to 100",
            ],
        ),
        (
            json!({"spec": {"blocks": [{}], "priority": -1}}),
            vec![
                "spec.priority: Invalid value: -1: spec.priority in body should be greater than or equal to 0",
            ],
        ),
        (
            json!({"spec": {"blocks": [{}], "interface": "Eth_0"}}),
            vec![
                r#"spec.interface: Invalid value: "Eth_0": spec.interface in body should match '^[a-z0-9]+$'"#,
            ],
        ),
        (
            json!({"spec": {"blocks": [{}], "interface": "averyveryverylongname0"}}),
            vec!["spec.interface: Too long: may not be more than 15 bytes"],
        ),
        (
            json!({"spec": {"blocks": [{}], "interface": ""}}),
            vec![
                r#"spec.interface: Invalid value: "": spec.interface in body should be at least 1 chars long"#,
                r#"spec.interface: Invalid value: "": spec.interface in body should match '^[a-z0-9]+$'"#,
            ],
        ),
        (
            json!({"spec": {"blocks": [{}], "port": true}}),
            vec![
                r#"spec.port: Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean""#,
            ],
        ),
        (
            json!({"spec": {"blocks": [{}], "labels": {"a": 1}}}),
            vec![
                r#"spec.labels.a: Invalid value: "integer": spec.labels.a in body must be of type string: "integer""#,
            ],
        ),
        (
            json!({"spec": {"blocks": [{"cidr": "2001:db8::/64"}], "port": "http", "note": null}}),
            vec![],
        ),
        (json!({"spec": {"blocks": [{}], "port": 8080}}), vec![]),
    ];
    for (obj, want) in cases {
        assert_eq!(rendered(&validate(&pool_schema(), &obj)), want, "{obj}");
    }
}

#[test]
fn formats_kube_apiserver_checks() {
    let cases = [
        ("ipv4", "192.0.2.1", true),
        ("ipv4", "192.0.2", false),
        ("ipv6", "2001:db8::1", true),
        ("ipv6", "192.0.2.1", false),
        ("cidr", "198.51.100.0/24", true),
        ("cidr", "2001:db8::/129", false),
        ("cidr", "198.51.100.0", false),
        ("mac", "02:00:5e:10:00:01", true),
        ("mac", "02:00:5e:10:00", false),
        ("uuid", "4f9c2f3a-1b2c-4d5e-8f90-123456789abc", true),
        ("date-time", "2026-12-02T04:00:00Z", true),
        ("date-time", "2026-12-02T04:00:00.123+01:00", true),
        ("date-time", "yesterday", false),
        ("hostname", "router-1.example", true),
        ("hostname", "-bad", false),
        ("something-else", "anything", true),
    ];
    for (format, text, ok) in cases {
        assert_eq!(format_matches(format, text), ok, "{format} {text}");
    }
}

#[test]
fn list_types_refuse_duplicates() {
    let schema = json!({"type": "object", "properties": {
        "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        "peers": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                  "items": {"type": "object", "properties": {"name": {"type": "string"}, "asn": {"type": "integer"}}}},
    }});
    let obj = json!({"tags": ["a", "b", "a"], "peers": [{"name": "r1", "asn": 1}, {"name": "r1", "asn": 2}]});
    assert_eq!(
        rendered(&validate(&schema, &obj)),
        [
            r#"peers[1]: Duplicate value: map[string]interface {}{"name":"r1"}"#,
            r#"tags[2]: Duplicate value: "a""#,
        ]
    );
}

#[test]
fn non_structural_schemas_are_refused_where_kube_apiserver_refuses_them() {
    let schema = json!({"type": "object", "properties": {
        "spec": {"properties": {"port": {"x-kubernetes-int-or-string": true},
                                "free": {"x-kubernetes-preserve-unknown-fields": true},
                                "list": {"type": "array", "items": {}}}}}});
    assert_eq!(
        rendered(&structural_errors(
            &schema,
            "spec.versions[0].schema.openAPIV3Schema"
        )),
        [
            "spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields",
            "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[list].items.type: Required value: must not be empty for specified array items",
        ]
    );
    assert_eq!(
        rendered(&structural_errors(&json!({"type": "string"}), "s")),
        [r#"s.type: Invalid value: "string": must be object at the root"#]
    );
    assert!(structural_errors(&pool_schema(), "s").is_empty());
}
