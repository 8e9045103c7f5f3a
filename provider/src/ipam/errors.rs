//! Why an allocation failed, as a typed reason plus a message naming Service, pool and address.

use std::net::IpAddr;

use super::IpFamily;
use super::request::ServiceKey;

/// A failed allocation. `reason()` is the stable name for conditions and metrics; `Display`
/// is the sentence for events.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AllocationError {
    /// Neither the namespace nor the ConfigMap's global keys define a pool, and no pool
    /// object selects the Service.
    #[error(
        "Service {service}: no address pool for namespace `{ns}` (none of `cidr-{ns}`, \
         `range-{ns}`, `cidr-global`, `range-global` is set, and no pool object \
         selects this Service)",
        ns = service.namespace
    )]
    NoPool {
        /// The Service.
        service: ServiceKey,
    },
    /// The pool the Service names does not exist.
    #[error("Service {service}: annotation {annotation} names pool `{name}`, which does not exist")]
    NoSuchPool {
        /// The Service.
        service: ServiceKey,
        /// The annotation naming it.
        annotation: &'static str,
        /// The name as written.
        name: String,
    },
    /// The pool the Service names does not select it.
    #[error(
        "Service {service}: pool `{pool}` does not select this Service (its serviceSelector, \
         mode or OpenELB annotation does not match)"
    )]
    NotSelected {
        /// The Service.
        service: ServiceKey,
        /// The pool.
        pool: String,
    },
    /// The only pools that could serve the Service are disabled.
    #[error("Service {service}: pool `{pool}` is disabled: it gives no new addresses")]
    PoolDisabled {
        /// The Service.
        service: ServiceKey,
        /// The pool.
        pool: String,
    },
    /// The pool conflicts with an older one and gives nothing.
    #[error("Service {service}: pool `{pool}` gives no addresses: {message}")]
    PoolConflict {
        /// The Service.
        service: ServiceKey,
        /// The pool.
        pool: String,
        /// The conflict, as the pool's condition says it.
        message: String,
    },
    /// Every address of the wanted family in the pool is taken.
    #[error("Service {service}: pool `{pool}` has no free {family} address")]
    OutOfAddresses {
        /// The Service.
        service: ServiceKey,
        /// The pool name.
        pool: String,
        /// The family that ran out.
        family: IpFamily,
    },
    /// The requested address is held by another Service and cannot be shared with it.
    #[error(
        "Service {service}: address {address} in pool `{pool}` is already allocated to \
         Service {holder}{why}",
        why = if *shareable { " and their ports overlap" } else { "" }
    )]
    AlreadyAllocated {
        /// The Service.
        service: ServiceKey,
        /// The pool name.
        pool: String,
        /// The contested address.
        address: IpAddr,
        /// A Service holding it.
        holder: ServiceKey,
        /// Sharing was allowed but the ports overlap.
        shareable: bool,
    },
    /// The requested address lies outside the namespace's pool.
    #[error("Service {service}: requested address {address} is not in pool `{pool}`")]
    NotInPool {
        /// The Service.
        service: ServiceKey,
        /// The pool name.
        pool: String,
        /// The requested address.
        address: IpAddr,
    },
    /// The requested address lies in none of the Service's several candidate pools.
    #[error(
        "Service {service}: requested address {address} is in none of the pools that may \
         serve this Service ({})",
        pools.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", ")
    )]
    NotInAnyPool {
        /// The Service.
        service: ServiceKey,
        /// The candidate pools.
        pools: Vec<String>,
        /// The requested address.
        address: IpAddr,
    },
    /// The policy needs a family the pool does not have.
    #[error(
        "Service {service}: pool `{pool}` has no {family} addresses but the Service requires one"
    )]
    FamilyUnavailable {
        /// The Service.
        service: ServiceKey,
        /// The pool name.
        pool: String,
        /// The missing family.
        family: IpFamily,
    },
    /// The requested addresses cannot be used as written.
    #[error("Service {service}: requested addresses `{requested}` for pool `{pool}`: {problem}")]
    InvalidRequest {
        /// The Service.
        service: ServiceKey,
        /// The pool name.
        pool: String,
        /// The requested addresses as given, comma-joined.
        requested: String,
        /// What is wrong.
        problem: String,
    },
}

impl AllocationError {
    /// The pool the error is about, if one.
    pub fn pool(&self) -> Option<&str> {
        match self {
            AllocationError::NoPool { .. }
            | AllocationError::NoSuchPool { .. }
            | AllocationError::NotInAnyPool { .. } => None,
            AllocationError::NotSelected { pool, .. }
            | AllocationError::PoolDisabled { pool, .. }
            | AllocationError::PoolConflict { pool, .. }
            | AllocationError::OutOfAddresses { pool, .. }
            | AllocationError::AlreadyAllocated { pool, .. }
            | AllocationError::NotInPool { pool, .. }
            | AllocationError::FamilyUnavailable { pool, .. }
            | AllocationError::InvalidRequest { pool, .. } => Some(pool),
        }
    }

    /// The ConfigMap's problems may explain the error: it is about no pool at all, or about a
    /// ConfigMap pool (object pools are named `<kind>/<name>`).
    pub fn may_involve_config(&self) -> bool {
        match self {
            AllocationError::NoSuchPool { .. } => false,
            _ => self.pool().is_none_or(|pool| !pool.contains('/')),
        }
    }

    /// The pool gave nothing because it is disabled or conflicting.
    pub fn is_closed_pool(&self) -> bool {
        matches!(
            self,
            AllocationError::PoolDisabled { .. } | AllocationError::PoolConflict { .. }
        )
    }

    /// The stable CamelCase name of the reason, for conditions and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            AllocationError::NoPool { .. } => "NoPool",
            AllocationError::NoSuchPool { .. } => "NoSuchPool",
            AllocationError::NotSelected { .. } => "PoolDoesNotSelect",
            AllocationError::PoolDisabled { .. } => "PoolDisabled",
            AllocationError::PoolConflict { .. } => "PoolConflict",
            AllocationError::OutOfAddresses { .. } => "OutOfAddresses",
            AllocationError::AlreadyAllocated { .. } => "AlreadyAllocated",
            AllocationError::NotInPool { .. } | AllocationError::NotInAnyPool { .. } => "NotInPool",
            AllocationError::FamilyUnavailable { .. } => "FamilyUnavailable",
            AllocationError::InvalidRequest { .. } => "InvalidRequest",
        }
    }
}
