//! Parsing request paths into what they address. Pure: no store access
//! except the registry lookup passed in.
//!
//! ```text
//! /api/v1/[namespaces/{ns}/]{plural}[/{name}[/{subresource}]]
//! /apis/{group}/{version}/[namespaces/{ns}/]{plural}[/{name}[/{subresource}]]
//! /api, /apis, /api/v1, /apis/{group}[/{version}], /version, /openapi/v2, /openapi/v3[/...]
//! ```

/// What a path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Version,
    /// `/api`
    CoreVersions,
    /// `/apis`
    GroupList,
    /// `/apis/{group}`
    Group {
        group: String,
    },
    /// `/api/v1`, `/apis/{group}/{version}`
    ResourceList {
        group: String,
        version: String,
    },
    OpenApiV2,
    OpenApiV3Root,
    OpenApiV3 {
        group: String,
        version: String,
    },
    /// Health endpoints (`/healthz`, `/readyz`, `/livez`).
    Health,
    Resource(ResourcePath),
    NotFound,
}

/// A path under a resource collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePath {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

pub fn parse(path: &str) -> Route {
    let segments: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    match segments.as_slice() {
        ["version"] => Route::Version,
        ["healthz" | "readyz" | "livez", ..] => Route::Health,
        ["api"] => Route::CoreVersions,
        ["apis"] => Route::GroupList,
        ["openapi", "v2"] => Route::OpenApiV2,
        ["openapi", "v3"] => Route::OpenApiV3Root,
        ["openapi", "v3", "api", version] => Route::OpenApiV3 {
            group: String::new(),
            version: (*version).to_owned(),
        },
        ["openapi", "v3", "apis", group, version] => Route::OpenApiV3 {
            group: (*group).to_owned(),
            version: (*version).to_owned(),
        },
        ["api", version] => Route::ResourceList {
            group: String::new(),
            version: (*version).to_owned(),
        },
        ["apis", group] => Route::Group {
            group: (*group).to_owned(),
        },
        ["apis", group, version] => Route::ResourceList {
            group: (*group).to_owned(),
            version: (*version).to_owned(),
        },
        ["api", version, rest @ ..] => resource_path("", version, rest),
        ["apis", group, version, rest @ ..] => resource_path(group, version, rest),
        _ => Route::NotFound,
    }
}

fn resource_path(group: &str, version: &str, rest: &[&str]) -> Route {
    let make = |namespace: Option<&str>, tail: &[&str]| -> Route {
        let (plural, name, subresource) = match tail {
            [plural] => (plural, None, None),
            [plural, name] => (plural, Some(*name), None),
            [plural, name, sub] => (plural, Some(*name), Some(*sub)),
            _ => return Route::NotFound,
        };
        Route::Resource(ResourcePath {
            group: group.to_owned(),
            version: version.to_owned(),
            plural: (*plural).to_owned(),
            namespace: namespace.map(str::to_owned),
            name: name.map(str::to_owned),
            subresource: subresource.map(str::to_owned),
        })
    };
    match rest {
        // The namespace object itself and its subresources.
        ["namespaces"] | ["namespaces", _] | ["namespaces", _, "status" | "finalize"] => {
            make(None, rest)
        }
        ["namespaces", ns, tail @ ..] => make(Some(ns), tail),
        _ => make(None, rest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(
        group: &str,
        plural: &str,
        ns: Option<&str>,
        name: Option<&str>,
        sub: Option<&str>,
    ) -> Route {
        Route::Resource(ResourcePath {
            group: group.to_owned(),
            version: "v1".to_owned(),
            plural: plural.to_owned(),
            namespace: ns.map(str::to_owned),
            name: name.map(str::to_owned),
            subresource: sub.map(str::to_owned),
        })
    }

    #[test]
    fn paths_table() {
        let cases = [
            ("/api/v1/services", res("", "services", None, None, None)),
            (
                "/api/v1/namespaces/default/services",
                res("", "services", Some("default"), None, None),
            ),
            (
                "/api/v1/namespaces/default/services/web",
                res("", "services", Some("default"), Some("web"), None),
            ),
            (
                "/api/v1/namespaces/default/services/web/status",
                res("", "services", Some("default"), Some("web"), Some("status")),
            ),
            (
                "/api/v1/namespaces",
                res("", "namespaces", None, None, None),
            ),
            (
                "/api/v1/namespaces/kube-system",
                res("", "namespaces", None, Some("kube-system"), None),
            ),
            (
                "/api/v1/namespaces/x/status",
                res("", "namespaces", None, Some("x"), Some("status")),
            ),
            (
                "/api/v1/nodes/n1/status",
                res("", "nodes", None, Some("n1"), Some("status")),
            ),
            (
                "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/l",
                res(
                    "coordination.k8s.io",
                    "leases",
                    Some("kube-system"),
                    Some("l"),
                    None,
                ),
            ),
            (
                "/apis/apps/v1",
                Route::ResourceList {
                    group: "apps".to_owned(),
                    version: "v1".to_owned(),
                },
            ),
            ("/api", Route::CoreVersions),
            ("/version", Route::Version),
            ("/api/v1/a/b/c/d", Route::NotFound),
            ("/nothing", Route::NotFound),
        ];
        for (path, want) in cases {
            assert_eq!(parse(path), want, "{path}");
        }
    }
}
