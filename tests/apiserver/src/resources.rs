//! The registry of resource types the server serves: the built-in kinds plus one
//! entry per served version of every CustomResourceDefinition created so far.
//!
//! Routing, discovery and OpenAPI all read this table; the store adds and
//! removes CRD entries when CRD objects are written (see [`crate::crd`]).

use std::collections::BTreeMap;
use std::sync::Arc;

/// Identifies a resource collection: group (`""` for core), version, plural.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceKey {
    pub group: String,
    pub version: String,
    pub plural: String,
}

/// Everything the server needs to know about one resource type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceType {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub list_kind: String,
    pub namespaced: bool,
    /// Whether a `/status` subresource exists; if so, writes to the main resource keep the old status.
    pub status_subresource: bool,
    pub short_names: Vec<String>,
    /// Set for types defined by a CustomResourceDefinition (by its name).
    pub defined_by_crd: Option<String>,
    /// A CRD version's `additionalPrinterColumns` (simple `.a.b` paths only).
    pub printer_columns: Vec<PrinterColumn>,
    /// Discovery categories (`kubectl get all` asks for `all`).
    pub categories: Vec<String>,
    /// A CRD version's `openAPIV3Schema`, which writes are validated, pruned and defaulted against.
    pub schema: Option<Arc<serde_json::Value>>,
    /// The version objects are stored in: all served versions of a CRD share
    /// one collection (conversion `None`: only `apiVersion` differs).
    pub storage_version: String,
}

/// One extra `kubectl get` column of a CRD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrinterColumn {
    pub name: String,
    /// OpenAPI type (`string`, `integer`, `date`, ...).
    pub kind: String,
    /// The JSON pointer the column's jsonPath names when it is a plain `.a.b` path, else empty.
    pub pointer: String,
    /// The column's `jsonPath` as the CRD wrote it (see [`crate::jsonpath`] for the forms served).
    pub json_path: String,
    /// 0 for `kubectl get`; higher priorities only show with `-o wide`.
    pub priority: i64,
}

impl ResourceType {
    /// `v1` for core, `group/version` otherwise.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn key(&self) -> ResourceKey {
        ResourceKey {
            group: self.group.clone(),
            version: self.version.clone(),
            plural: self.plural.clone(),
        }
    }

    /// The collection the objects live in (the storage version's key).
    pub fn storage_key(&self) -> ResourceKey {
        ResourceKey {
            group: self.group.clone(),
            version: self.storage_version.clone(),
            plural: self.plural.clone(),
        }
    }

    /// `apiVersion` of stored objects.
    pub fn storage_api_version(&self) -> String {
        if self.group.is_empty() {
            self.storage_version.clone()
        } else {
            format!("{}/{}", self.group, self.storage_version)
        }
    }

    /// A stored object as this version serves it: conversion `None` rewrites `apiVersion` only.
    pub fn present(&self, stored: Arc<serde_json::Value>) -> Arc<serde_json::Value> {
        if self.version == self.storage_version {
            return stored;
        }
        let mut copy = (*stored).clone();
        if let Some(map) = copy.as_object_mut() {
            map.insert("apiVersion".to_owned(), self.api_version().into());
        }
        Arc::new(copy)
    }

    /// `services` for core, `leases.coordination.k8s.io` otherwise, as error messages print it.
    pub fn qualified_plural(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

/// The table of served resource types.
#[derive(Debug, Clone)]
pub struct Registry {
    types: BTreeMap<ResourceKey, Arc<ResourceType>>,
}

/// (group, version, plural, kind, namespaced, status subresource, short names)
type Builtin = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    bool,
    bool,
    &'static [&'static str],
);

const BUILTINS: &[Builtin] = &[
    ("", "v1", "namespaces", "Namespace", false, true, &["ns"]),
    ("", "v1", "services", "Service", true, true, &["svc"]),
    ("", "v1", "configmaps", "ConfigMap", true, false, &["cm"]),
    ("", "v1", "secrets", "Secret", true, false, &[]),
    (
        "",
        "v1",
        "serviceaccounts",
        "ServiceAccount",
        true,
        false,
        &["sa"],
    ),
    ("", "v1", "nodes", "Node", false, true, &["no"]),
    ("", "v1", "endpoints", "Endpoints", true, false, &["ep"]),
    ("", "v1", "events", "Event", true, false, &["ev"]),
    ("", "v1", "pods", "Pod", true, true, &["po"]),
    (
        "",
        "v1",
        "resourcequotas",
        "ResourceQuota",
        true,
        true,
        &["quota"],
    ),
    (
        "",
        "v1",
        "limitranges",
        "LimitRange",
        true,
        false,
        &["limits"],
    ),
    (
        "apps",
        "v1",
        "deployments",
        "Deployment",
        true,
        true,
        &["deploy"],
    ),
    (
        "apps",
        "v1",
        "replicasets",
        "ReplicaSet",
        true,
        true,
        &["rs"],
    ),
    ("apps", "v1", "daemonsets", "DaemonSet", true, true, &["ds"]),
    (
        "apps",
        "v1",
        "statefulsets",
        "StatefulSet",
        true,
        true,
        &["sts"],
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        "Role",
        true,
        false,
        &[],
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "RoleBinding",
        true,
        false,
        &[],
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "ClusterRole",
        false,
        false,
        &[],
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        false,
        false,
        &[],
    ),
    (
        "discovery.k8s.io",
        "v1",
        "endpointslices",
        "EndpointSlice",
        true,
        false,
        &[],
    ),
    (
        "events.k8s.io",
        "v1",
        "events",
        "Event",
        true,
        false,
        &["ev"],
    ),
    (
        "coordination.k8s.io",
        "v1",
        "leases",
        "Lease",
        true,
        false,
        &[],
    ),
    (
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        false,
        true,
        &["crd", "crds"],
    ),
];

/// Kinds a real server lists in the `all` category (`kubectl get all`).
const IN_ALL: &[&str] = &[
    "pods",
    "services",
    "deployments",
    "replicasets",
    "daemonsets",
    "statefulsets",
];

impl Default for Registry {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Registry {
    /// The built-in kinds listed in the issue (plus `pods`, which kubectl tooling often asks for).
    pub fn builtin() -> Self {
        let mut types = BTreeMap::new();
        for &(group, version, plural, kind, namespaced, status, short) in BUILTINS {
            let rt = ResourceType {
                group: group.to_owned(),
                version: version.to_owned(),
                plural: plural.to_owned(),
                singular: kind.to_ascii_lowercase(),
                kind: kind.to_owned(),
                list_kind: format!("{kind}List"),
                namespaced,
                status_subresource: status,
                short_names: short.iter().map(|s| (*s).to_owned()).collect(),
                defined_by_crd: None,
                printer_columns: Vec::new(),
                categories: if IN_ALL.contains(&plural) {
                    vec!["all".to_owned()]
                } else {
                    Vec::new()
                },
                schema: None,
                storage_version: version.to_owned(),
            };
            types.insert(rt.key(), Arc::new(rt));
        }
        Registry { types }
    }

    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.types
            .get(&ResourceKey {
                group: group.to_owned(),
                version: version.to_owned(),
                plural: plural.to_owned(),
            })
            .cloned()
    }

    /// Finds the type of an object from its `apiVersion` and `kind`.
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceType>> {
        let (group, version) = split_api_version(api_version);
        self.types
            .values()
            .find(|rt| rt.group == group && rt.version == version && rt.kind == kind)
            .cloned()
    }

    /// True if some type is served in this group/version (for discovery 404s).
    pub fn serves_group_version(&self, group: &str, version: &str) -> bool {
        self.types
            .values()
            .any(|rt| rt.group == group && rt.version == version)
    }

    /// All types, ordered by group, version, plural.
    pub fn all(&self) -> impl Iterator<Item = &Arc<ResourceType>> {
        self.types.values()
    }

    pub fn insert(&mut self, rt: ResourceType) {
        self.types.insert(rt.key(), Arc::new(rt));
    }

    /// Removes every type defined by the named CRD, returning their keys
    /// (served and storage keys).
    pub fn remove_crd(&mut self, crd_name: &str) -> Vec<ResourceKey> {
        let removed: Vec<Arc<ResourceType>> = self
            .types
            .values()
            .filter(|rt| rt.defined_by_crd.as_deref() == Some(crd_name))
            .cloned()
            .collect();
        let mut keys = Vec::new();
        for rt in removed {
            self.types.remove(&rt.key());
            for key in [rt.key(), rt.storage_key()] {
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
        }
        keys
    }
}

/// Orders versions as Kubernetes prefers them: GA before beta before alpha,
/// higher numbers first, anything else last alphabetically (`v2`, `v1`,
/// `v1beta2`, `v1beta1`, `v1alpha1`, `foo`).
pub fn version_priority(
    version: &str,
) -> (u8, std::cmp::Reverse<u64>, std::cmp::Reverse<u64>, String) {
    use std::cmp::Reverse;
    let parsed = version.strip_prefix('v').and_then(|rest| {
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let major: u64 = digits.parse().ok()?;
        let tail = &rest[digits.len()..];
        let (stage, minor) = if tail.is_empty() {
            (0, 0)
        } else if let Some(n) = tail.strip_prefix("beta") {
            (1, n.parse().ok()?)
        } else if let Some(n) = tail.strip_prefix("alpha") {
            (2, n.parse().ok()?)
        } else {
            return None;
        };
        Some((stage, major, minor))
    });
    match parsed {
        Some((stage, major, minor)) => (stage, Reverse(major), Reverse(minor), String::new()),
        None => (3, Reverse(0), Reverse(0), version.to_owned()),
    }
}

/// Splits `group/version` (or bare `v1`) into its parts.
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    }
}
