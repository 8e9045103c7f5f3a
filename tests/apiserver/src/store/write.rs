//! The write paths of the store: create, update, patch (deletes are in
//! `delete.rs`).
//!
//! All writes funnel into [`State::commit`], which applies the rules every
//! kind shares: server-owned metadata cannot be changed by clients, status
//! lives behind `/status` for kinds that have that subresource, `generation`
//! moves only when something outside metadata and status changed, a write
//! that changes nothing does not bump `resourceVersion`, and an object being
//! deleted disappears once its last finalizer is removed. Services also get
//! the defaults and allocations of [`crate::defaults`].

use std::sync::Arc;

use serde_json::{Value, json};

use super::{EventType, State, Store, StoreEvent};
use crate::error::ApiError;
use crate::meta;
use crate::patch::{self, PatchKind};
use crate::resources::ResourceType;

/// Which part of an object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// The main resource: everything except status (for kinds with a status subresource).
    Main,
    /// The `/status` subresource: only `status`.
    Status,
}

/// One PATCH request, as the router decoded it.
#[derive(Debug, Clone, Copy)]
pub struct PatchRequest<'a> {
    pub kind: PatchKind,
    /// The parsed patch document.
    pub body: &'a Value,
    pub mode: WriteMode,
    /// The `fieldManager` query parameter (required for apply patches).
    pub field_manager: Option<&'a str>,
    /// `force=true`: an apply takes fields other managers own instead of failing.
    pub force: bool,
    pub dry_run: bool,
}

/// `DeleteOptions.preconditions`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeletePreconditions {
    pub uid: Option<String>,
    pub resource_version: Option<String>,
}

impl Store {
    /// POST: creates `obj` in `namespace`, stamping uid, creationTimestamp,
    /// generation and resourceVersion.
    pub fn create(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        obj: Value,
        dry_run: bool,
    ) -> Result<Arc<Value>, ApiError> {
        let mut state = self.lock();
        state.create(&self.events, rt, namespace, obj, dry_run)
    }

    /// PUT: replaces the object; a non-empty `metadata.resourceVersion` that is
    /// not the current one fails with 409 Conflict.
    pub fn update(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        mut obj: Value,
        mode: WriteMode,
        dry_run: bool,
    ) -> Result<Arc<Value>, ApiError> {
        if !obj.is_object() {
            return Err(ApiError::BadRequest(format!(
                "the body of a {} update must be a JSON object",
                rt.kind
            )));
        }
        let body_name = meta::name(&obj);
        if body_name.is_empty() {
            meta::set(&mut obj, "name", name);
        } else if body_name != name {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let mut state = self.lock();
        let current = state.get(rt, namespace.unwrap_or(""), name)?;
        let wanted = meta::resource_version(&obj);
        if !wanted.is_empty() && wanted != meta::resource_version(&current) {
            return Err(ApiError::stale(&rt.qualified_plural(), name));
        }
        state.commit(&self.events, rt, Some(current), obj, mode, dry_run)
    }

    /// PATCH with any of the four patch kinds. An apply patch creates the
    /// object when it does not exist yet.
    pub fn patch(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        request: &PatchRequest<'_>,
    ) -> Result<Arc<Value>, ApiError> {
        let PatchRequest {
            kind,
            body,
            mode,
            field_manager,
            force,
            dry_run,
        } = *request;
        let mut state = self.lock();
        let current = match state.get(rt, namespace.unwrap_or(""), name) {
            Ok(current) => current,
            Err(not_found) if kind == PatchKind::Apply && mode == WriteMode::Main => {
                let manager = field_manager.ok_or_else(|| {
                    ApiError::BadRequest("fieldManager is required for apply requests".to_owned())
                })?;
                let mut obj = body.clone();
                if !obj.is_object() {
                    return Err(ApiError::BadRequest(
                        "an apply patch must be a JSON object".to_owned(),
                    ));
                }
                meta::set(&mut obj, "name", name);
                let now = crate::time::now_rfc3339();
                patch::apply::record_manager(
                    &mut obj,
                    manager,
                    "Apply",
                    &rt.api_version(),
                    body,
                    &now,
                );
                drop(not_found);
                return state.create(&self.events, rt, namespace, obj, dry_run);
            }
            Err(e) => return Err(e),
        };
        if kind == PatchKind::Apply && field_manager.is_none() {
            return Err(ApiError::BadRequest(
                "fieldManager is required for apply requests".to_owned(),
            ));
        }
        let mut patched = patch::apply_patch(kind, &rt.present(current.clone()), body)?;
        if !patched.is_object() {
            return Err(ApiError::BadRequest(format!(
                "the {kind:?} patch turned the object into a non-object"
            )));
        }
        let wanted = meta::resource_version(&patched);
        if !wanted.is_empty() && wanted != meta::resource_version(&current) {
            return Err(ApiError::stale(&rt.qualified_plural(), name));
        }
        if let (PatchKind::Apply, Some(manager)) = (kind, field_manager) {
            let now = crate::time::now_rfc3339();
            patch::apply::resolve_conflicts(&current, &mut patched, manager, body, force).map_err(
                |detail| ApiError::Conflict {
                    resource: rt.qualified_plural(),
                    name: name.to_owned(),
                    detail,
                },
            )?;
            patch::apply::prune_unapplied(&mut patched, manager, body);
            patch::apply::record_manager(
                &mut patched,
                manager,
                "Apply",
                &rt.api_version(),
                body,
                &now,
            );
        }
        state.commit(&self.events, rt, Some(current), patched, mode, dry_run)
    }
}

impl State {
    pub(super) fn create(
        &mut self,
        events: &tokio::sync::broadcast::Sender<Arc<StoreEvent>>,
        rt: &ResourceType,
        namespace: Option<&str>,
        mut obj: Value,
        dry_run: bool,
    ) -> Result<Arc<Value>, ApiError> {
        if !obj.is_object() {
            return Err(ApiError::BadRequest(format!(
                "the body of a {} create must be a JSON object",
                rt.kind
            )));
        }
        check_type(rt, &mut obj)?;
        let namespace = if rt.namespaced {
            let url_ns = namespace.unwrap_or("");
            let body_ns = meta::namespace(&obj);
            if !body_ns.is_empty() && !url_ns.is_empty() && body_ns != url_ns {
                return Err(ApiError::BadRequest(format!(
                    "the namespace of the provided object ({body_ns}) does not match the namespace sent on the request ({url_ns})"
                )));
            }
            let ns = if url_ns.is_empty() {
                body_ns.to_owned()
            } else {
                url_ns.to_owned()
            };
            if ns.is_empty() {
                return Err(ApiError::BadRequest(format!(
                    "{} is namespaced: the request needs a namespace",
                    rt.kind
                )));
            }
            if !self.namespace_exists(&ns) {
                return Err(ApiError::NotFound {
                    resource: "namespaces".to_owned(),
                    name: ns,
                });
            }
            meta::set(&mut obj, "namespace", ns.clone());
            ns
        } else {
            meta::metadata_mut(&mut obj).remove("namespace");
            String::new()
        };
        if meta::name(&obj).is_empty() {
            let prefix = meta::str_field(&obj, "generateName").to_owned();
            if prefix.is_empty() {
                return Err(ApiError::Invalid(format!(
                    "{} \"\" is invalid: metadata.name: Required value: name or generateName is required",
                    rt.kind
                )));
            }
            let name = format!("{prefix}{}", self.ids.name_suffix());
            meta::set(&mut obj, "name", name);
        }
        let name = meta::name(&obj).to_owned();
        crate::defaults::check_name(rt, &name)?;
        if !meta::resource_version(&obj).is_empty() {
            return Err(ApiError::BadRequest(format!(
                "{} \"{name}\": resourceVersion should not be set on objects to be created",
                rt.kind
            )));
        }
        if self.get(rt, &namespace, &name).is_ok() {
            return Err(ApiError::AlreadyExists {
                resource: rt.qualified_plural(),
                name,
            });
        }
        let now = crate::time::now_rfc3339();
        let uid = self.ids.uid();
        {
            let meta = meta::metadata_mut(&mut obj);
            meta.insert("uid".to_owned(), uid.into());
            meta.insert("creationTimestamp".to_owned(), now.clone().into());
            meta.insert("generation".to_owned(), 1.into());
            meta.remove("deletionTimestamp");
            meta.remove("deletionGracePeriodSeconds");
        }
        crate::workloads::prepare_for_create(rt, &mut obj);
        crate::schema::admit(rt, &mut obj)?;
        crate::workloads::default_on_create(rt, &mut obj);
        to_storage_version(rt, &mut obj);
        match (rt.group.as_str(), rt.plural.as_str()) {
            ("apiextensions.k8s.io", "customresourcedefinitions") => {
                let types = crate::crd::resource_types(&obj)?;
                crate::crd::set_established(&mut obj, &now);
                if !dry_run {
                    for t in types {
                        self.registry.insert(t);
                    }
                }
            }
            ("", "services") => {
                if dry_run {
                    let mut scratch = self.allocations.clone();
                    crate::defaults::default_service(&mut obj, None, &mut scratch)?;
                } else {
                    crate::defaults::default_service(&mut obj, None, &mut self.allocations)?;
                }
            }
            ("", "namespaces") => {
                if let Some(map) = obj.as_object_mut() {
                    map.insert("status".to_owned(), json!({"phase": "Active"}));
                }
            }
            _ => {}
        }
        if dry_run {
            meta::set(&mut obj, "resourceVersion", self.revision.to_string());
            return Ok(Arc::new(obj));
        }
        self.revision += 1;
        meta::set(&mut obj, "resourceVersion", self.revision.to_string());
        let obj = Arc::new(obj);
        self.objects
            .entry(rt.storage_key())
            .or_default()
            .insert((namespace, name), obj.clone());
        let event = StoreEvent::new(
            self.revision,
            rt.storage_key(),
            EventType::Added,
            obj.clone(),
            None,
        );
        self.record(events, event);
        Ok(obj)
    }

    /// Applies the shared update rules and stores the result.
    fn commit(
        &mut self,
        events: &tokio::sync::broadcast::Sender<Arc<StoreEvent>>,
        rt: &ResourceType,
        current: Option<Arc<Value>>,
        mut new: Value,
        mode: WriteMode,
        dry_run: bool,
    ) -> Result<Arc<Value>, ApiError> {
        let Some(old) = current else {
            return self.create(events, rt, None, new, dry_run);
        };
        check_type(rt, &mut new)?;
        let name = meta::name(&old).to_owned();
        let namespace = meta::namespace(&old).to_owned();
        match mode {
            WriteMode::Status => {
                let status = new.get("status").cloned();
                new = (*old).clone();
                if let Some(map) = new.as_object_mut() {
                    match status {
                        Some(s) => map.insert("status".to_owned(), s),
                        None => map.remove("status"),
                    };
                }
            }
            WriteMode::Main => {
                meta::keep_server_fields(&mut new, &old);
                meta::set(&mut new, "name", name.clone());
                if rt.namespaced {
                    meta::set(&mut new, "namespace", namespace.clone());
                } else {
                    meta::metadata_mut(&mut new).remove("namespace");
                }
                if rt.status_subresource
                    && let Some(map) = new.as_object_mut()
                {
                    match old.get("status") {
                        Some(s) => map.insert("status".to_owned(), s.clone()),
                        None => map.remove("status"),
                    };
                }
                if rt.group.is_empty() && rt.plural == "services" {
                    if dry_run {
                        let mut scratch = self.allocations.clone();
                        crate::defaults::default_service(&mut new, Some(&old), &mut scratch)?;
                    } else {
                        crate::defaults::default_service(
                            &mut new,
                            Some(&old),
                            &mut self.allocations,
                        )?;
                    }
                }
                if rt.group.is_empty() && rt.plural == "nodes" {
                    crate::defaults::check_node_update(&new, &old)?;
                }
                if meta::is_deleting(&old) {
                    let old_f = finalizers(&old);
                    if let Some(added) = finalizers(&new).into_iter().find(|f| !old_f.contains(f)) {
                        return Err(ApiError::Invalid(format!(
                            "{} \"{name}\" is invalid: metadata.finalizers: Forbidden: no new finalizers can be added \
                             if the object is being deleted, found new finalizers [\"{added}\"]",
                            rt.kind
                        )));
                    }
                }
            }
        }
        if mode == WriteMode::Main {
            crate::workloads::default_on_create(rt, &mut new);
        }
        crate::schema::admit(rt, &mut new)?;
        to_storage_version(rt, &mut new);
        // Custom resources without a status subresource count status changes too.
        let status_counts = rt.defined_by_crd.is_some() && !rt.status_subresource;
        if spec_changed(&old, &new, status_counts) {
            let generation = meta::metadata(&old)
                .and_then(|m| m.get("generation"))
                .and_then(Value::as_i64)
                .unwrap_or(0);
            meta::set(&mut new, "generation", generation + 1);
        }
        meta::set(
            &mut new,
            "resourceVersion",
            meta::resource_version(&old).to_owned(),
        );
        if new == *old {
            // A no-op write: like the real apiserver, no new resourceVersion and no event.
            return Ok(old);
        }
        let is_crd = rt.group == "apiextensions.k8s.io" && rt.plural == "customresourcedefinitions";
        let crd_types = if is_crd {
            Some(crate::crd::resource_types(&new)?)
        } else {
            None
        };
        if dry_run {
            return Ok(Arc::new(new));
        }
        if meta::is_deleting(&new) && !meta::has_finalizers(&new) {
            return self.remove(events, rt, &namespace, &name, old);
        }
        if let Some(types) = crd_types {
            let old_storage = self
                .registry
                .all()
                .find(|t| t.defined_by_crd.as_deref() == Some(name.as_str()))
                .map(|t| (t.storage_key(), t.storage_api_version()));
            self.registry.remove_crd(&name);
            if let (Some((old_key, _)), Some(new_type)) = (old_storage, types.first()) {
                self.move_storage(&old_key, new_type);
            }
            for t in types {
                self.registry.insert(t);
            }
        }
        self.revision += 1;
        meta::set(&mut new, "resourceVersion", self.revision.to_string());
        let new = Arc::new(new);
        self.objects
            .entry(rt.storage_key())
            .or_default()
            .insert((namespace, name), new.clone());
        let event = StoreEvent::new(
            self.revision,
            rt.storage_key(),
            EventType::Modified,
            new.clone(),
            Some(old),
        );
        self.record(events, event);
        Ok(new)
    }
}

impl State {
    /// A CRD update that changes the storage version moves the stored objects
    /// (a real server keeps old ones in the old version and lists it in
    /// `status.storedVersions`; with conversion `None` the difference is only
    /// `apiVersion`).
    fn move_storage(&mut self, old_key: &crate::resources::ResourceKey, new_type: &ResourceType) {
        let new_key = new_type.storage_key();
        if *old_key == new_key {
            return;
        }
        let Some(objects) = self.objects.remove(old_key) else {
            return;
        };
        let api_version = new_type.storage_api_version();
        let moved = objects
            .into_iter()
            .map(|(slot, obj)| {
                let mut obj = (*obj).clone();
                if let Some(map) = obj.as_object_mut() {
                    map.insert("apiVersion".to_owned(), api_version.clone().into());
                }
                (slot, Arc::new(obj))
            })
            .collect();
        self.objects.insert(new_key, moved);
    }
}

/// Objects of every served version of a CRD are stored in its storage version.
fn to_storage_version(rt: &ResourceType, obj: &mut Value) {
    if rt.version != rt.storage_version
        && let Some(map) = obj.as_object_mut()
    {
        map.insert("apiVersion".to_owned(), rt.storage_api_version().into());
    }
}

/// Sets `apiVersion`/`kind` from the URL's type, rejecting a body that names another type.
fn check_type(rt: &ResourceType, obj: &mut Value) -> Result<(), ApiError> {
    let api_version = rt.api_version();
    let Some(map) = obj.as_object_mut() else {
        return Err(ApiError::BadRequest(
            "the object must be a JSON object".to_owned(),
        ));
    };
    if let Some(v) = map
        .get("apiVersion")
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        && v != api_version
    {
        return Err(ApiError::BadRequest(format!(
            "the API version in the data ({v}) does not match the expected API version ({api_version})"
        )));
    }
    if let Some(k) = map
        .get("kind")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        && k != rt.kind
    {
        return Err(ApiError::BadRequest(format!(
            "the kind in the data ({k}) does not match the expected kind ({})",
            rt.kind
        )));
    }
    map.insert("apiVersion".to_owned(), api_version.into());
    map.insert("kind".to_owned(), rt.kind.clone().into());
    Ok(())
}

/// Whether anything but `metadata` and `status` differs: what `generation` tracks.
/// Compares in place; this runs on every write.
fn spec_changed(old: &Value, new: &Value, status_counts: bool) -> bool {
    let tracked = |k: &String| match k.as_str() {
        "metadata" | "apiVersion" | "kind" => false,
        "status" => status_counts,
        _ => true,
    };
    match (old.as_object(), new.as_object()) {
        (Some(o), Some(n)) => {
            o.iter()
                .filter(|(k, _)| tracked(k))
                .any(|(k, v)| n.get(k) != Some(v))
                || n.keys().filter(|k| tracked(k)).any(|k| !o.contains_key(k))
        }
        _ => old != new,
    }
}

fn finalizers(obj: &Value) -> Vec<String> {
    meta::str_list(meta::metadata(obj).and_then(|m| m.get("finalizers")))
}
