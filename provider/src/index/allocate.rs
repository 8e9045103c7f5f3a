//! One Service's ipam outcome: released (out of scope or deleted), failed with a reason, or
//! allocated from a pool (with the interface that goes with the addresses).

use super::*;

impl Index {
    /// The ipam outcome for a Service, or `None` for a Service we never touch.
    pub(super) fn outcome(&mut self, view: &ServiceView) -> Option<Outcome> {
        let key = &view.key;
        // `interface-<ns>` applies even when the namespace allocates from the global pool.
        let interface = self
            .allocator
            .pools()
            .interface_for_namespace(&key.namespace)
            .map(str::to_owned);
        if view.deleting || !view.in_scope(&self.settings.classes) {
            let holds = self.allocator.allocation(key).is_some();
            if !holds && !view.carries_our_marks() {
                return None;
            }
            if !self.allocator.release(key).is_empty() {
                self.metrics.releases.inc();
            }
            self.outside.remove(key);
            let why = if view.deleting {
                "Service deleted".to_string()
            } else if !view.is_load_balancer {
                "Service is no longer of type LoadBalancer".to_string()
            } else {
                format!(
                    "loadBalancerClass {:?} is not served by this controller",
                    view.class()
                )
            };
            return Some(Outcome::Released { why, interface });
        }
        let request = match view.request() {
            Ok(request) => request,
            Err(message) => {
                if !self.allocator.release(key).is_empty() {
                    self.metrics.releases.inc();
                }
                return Some(Outcome::Failed {
                    reason: "InvalidRequest".to_string(),
                    message,
                    requested: view.requested(),
                });
            }
        };
        let before = self.allocator.allocation(key).map(|a| a.addresses.clone());
        match self.allocator.allocate(&request) {
            Ok(allocation) => {
                if before.as_ref() != Some(&allocation.addresses) {
                    self.outside.remove(key);
                }
                // An object pool's interface goes with its addresses, as `interface-<ns>`
                // does with the ConfigMap's.
                let interface = match self.allocator.pools().pool(&allocation.pool) {
                    Some(pool) if pool.object.is_some() => pool.interface.clone(),
                    _ => interface,
                };
                Some(Outcome::Allocated {
                    outside_pool: self.outside.contains(key),
                    addresses: allocation.addresses,
                    pool: allocation.pool,
                    shared: allocation.shared,
                    requested: request.requested,
                    interface,
                })
            }
            Err(error) => {
                self.outside.remove(key);
                let mut message = error.to_string();
                let hints: Vec<&str> = self
                    .config_problems
                    .iter()
                    .filter(|_| error.may_involve_config())
                    .filter(|(ns, _)| ns.as_deref().is_none_or(|ns| ns == &*key.namespace))
                    .map(|(_, text)| text.as_str())
                    .collect();
                if !hints.is_empty() {
                    message = format!(
                        "{message}; pool configuration problems: {}",
                        hints.join("; ")
                    );
                }
                Some(Outcome::Failed {
                    reason: error.reason().to_string(),
                    message,
                    requested: request.requested,
                })
            }
        }
    }
}
