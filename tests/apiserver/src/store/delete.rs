//! The delete paths of the store: DELETE honouring finalizers and
//! preconditions, and the final removal that emits DELETED and cleans up what
//! the object owned (a namespace's objects, a CRD's resources, a Service's
//! cluster IPs and node ports).

use std::sync::Arc;

use serde_json::Value;

use super::{DeletePreconditions, EventType, State, Store, StoreEvent};
use crate::error::ApiError;
use crate::meta;
use crate::resources::ResourceType;

impl Store {
    /// DELETE: removes the object, or, if it has finalizers, marks it with a
    /// `deletionTimestamp` and leaves it until the last finalizer is removed.
    pub fn delete(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        preconditions: &DeletePreconditions,
        dry_run: bool,
    ) -> Result<Arc<Value>, ApiError> {
        let mut state = self.lock();
        state.delete(
            &self.events,
            rt,
            namespace.unwrap_or(""),
            name,
            preconditions,
            dry_run,
        )
    }
}

impl State {
    fn delete(
        &mut self,
        events: &tokio::sync::broadcast::Sender<Arc<StoreEvent>>,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        preconditions: &DeletePreconditions,
        dry_run: bool,
    ) -> Result<Arc<Value>, ApiError> {
        let current = self.get(rt, namespace, name)?;
        let precondition_failed = |what: &str, wanted: &str, actual: &str| ApiError::Conflict {
            resource: rt.qualified_plural(),
            name: name.to_owned(),
            detail: format!(
                "Precondition failed: {what} in precondition: {wanted}, {what} in object meta: {actual}"
            ),
        };
        if let Some(uid) = &preconditions.uid {
            let actual = meta::str_field(&current, "uid");
            if uid != actual {
                return Err(precondition_failed("UID", uid, actual));
            }
        }
        if let Some(rv) = &preconditions.resource_version {
            let actual = meta::resource_version(&current);
            if rv != actual {
                return Err(precondition_failed("ResourceVersion", rv, actual));
            }
        }
        if meta::has_finalizers(&current) {
            if meta::is_deleting(&current) || dry_run {
                return Ok(current);
            }
            let mut marked = (*current).clone();
            meta::set(&mut marked, "deletionTimestamp", crate::time::now_rfc3339());
            meta::set(&mut marked, "deletionGracePeriodSeconds", 0);
            self.revision += 1;
            meta::set(&mut marked, "resourceVersion", self.revision.to_string());
            let marked = Arc::new(marked);
            self.objects
                .entry(rt.storage_key())
                .or_default()
                .insert((namespace.to_owned(), name.to_owned()), marked.clone());
            let event = StoreEvent::new(
                self.revision,
                rt.storage_key(),
                EventType::Modified,
                marked.clone(),
                Some(current),
            );
            self.record(events, event);
            return Ok(marked);
        }
        if dry_run {
            return Ok(current);
        }
        self.remove(events, rt, namespace, name, current)
    }

    /// Removes an object for good, emitting DELETED (and cleaning up what it owned).
    pub(super) fn remove(
        &mut self,
        events: &tokio::sync::broadcast::Sender<Arc<StoreEvent>>,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        current: Arc<Value>,
    ) -> Result<Arc<Value>, ApiError> {
        if let Some(m) = self.objects.get_mut(&rt.storage_key()) {
            m.remove(&(namespace.to_owned(), name.to_owned()));
        }
        if rt.group.is_empty() && rt.plural == "services" {
            self.allocations.release(&current);
        }
        self.revision += 1;
        let mut gone = (*current).clone();
        meta::set(&mut gone, "resourceVersion", self.revision.to_string());
        let gone = Arc::new(gone);
        let event = StoreEvent::new(
            self.revision,
            rt.storage_key(),
            EventType::Deleted,
            gone.clone(),
            Some(current),
        );
        self.record(events, event);
        match (rt.group.as_str(), rt.plural.as_str()) {
            ("", "namespaces") => self.remove_all(events, |rt_key, ns| {
                !ns.is_empty() && ns == name && rt_key.plural != "namespaces"
            }),
            ("apiextensions.k8s.io", "customresourcedefinitions") => {
                let keys = self.registry.remove_crd(name);
                self.remove_all(events, |rt_key, _| keys.contains(rt_key));
            }
            _ => {}
        }
        Ok(gone)
    }

    /// Removes (finalizers notwithstanding) every object whose (type, namespace) matches.
    fn remove_all(
        &mut self,
        events: &tokio::sync::broadcast::Sender<Arc<StoreEvent>>,
        select: impl Fn(&crate::resources::ResourceKey, &str) -> bool,
    ) {
        let mut doomed = Vec::new();
        for (key, objects) in &self.objects {
            for ((ns, name), obj) in objects {
                if select(key, ns) {
                    doomed.push((key.clone(), ns.clone(), name.clone(), obj.clone()));
                }
            }
        }
        for (key, ns, name, obj) in doomed {
            // Already gone when an earlier removal took it along (mirrored Events).
            if self
                .objects
                .get_mut(&key)
                .and_then(|m| m.remove(&(ns, name)))
                .is_none()
            {
                continue;
            }
            if key.group.is_empty() && key.plural == "services" {
                self.allocations.release(&obj);
            }
            self.revision += 1;
            let mut gone = (*obj).clone();
            meta::set(&mut gone, "resourceVersion", self.revision.to_string());
            let event = StoreEvent::new(
                self.revision,
                key,
                EventType::Deleted,
                Arc::new(gone),
                Some(obj),
            );
            self.record(events, event);
        }
    }
}
