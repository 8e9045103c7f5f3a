//! Which shape a response takes, from the request's `Accept` header: the
//! object itself, a `Table` for kubectl's human-readable output, or
//! `PartialObjectMetadata` for metadata-only clients (kube-rs
//! `Api::get_metadata`, `list_metadata`, `metadata_watcher`).

use serde_json::{Value, json};

use crate::resources::ResourceType;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Representation {
    Object,
    Table,
    PartialMetadata,
}

impl Representation {
    /// Picks the client's first preference; anything else is the plain object.
    pub fn from_accept(accept: &str) -> Self {
        let first = accept.split(',').next().unwrap_or("");
        if first.contains("as=Table") {
            Representation::Table
        } else if first.contains("as=PartialObjectMetadata") {
            Representation::PartialMetadata
        } else {
            Representation::Object
        }
    }

    /// One object in this representation; None means "send it as stored".
    pub fn object(self, rt: &ResourceType, obj: &Value) -> Option<Value> {
        match self {
            Representation::Object => None,
            Representation::Table => {
                let metadata = json!({"resourceVersion": crate::meta::resource_version(obj)});
                Some(crate::table::table(rt, &[obj], metadata))
            }
            Representation::PartialMetadata => Some(partial(obj)),
        }
    }

    /// A list in this representation; None means "send the plain list".
    pub fn list(self, rt: &ResourceType, items: &[&Value], metadata: Value) -> Option<Value> {
        match self {
            Representation::Object => None,
            Representation::Table => Some(crate::table::table(rt, items, metadata)),
            Representation::PartialMetadata => Some(json!({
                "kind": "PartialObjectMetadataList",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": metadata,
                "items": items.iter().map(|o| partial(o)).collect::<Vec<_>>(),
            })),
        }
    }
}

fn partial(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or(Value::Null),
    })
}

#[cfg(test)]
mod tests {
    use super::Representation;

    #[test]
    fn first_accept_preference_decides() {
        let cases = [
            (
                "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
                Representation::Table,
            ),
            (
                "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
                Representation::PartialMetadata,
            ),
            ("application/json", Representation::Object),
            ("", Representation::Object),
        ];
        for (accept, want) in cases {
            assert_eq!(Representation::from_accept(accept), want, "{accept}");
        }
    }
}
