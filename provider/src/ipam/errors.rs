//! Why an allocation failed, as a typed reason plus a message naming Service, pool and address.

use std::net::IpAddr;

use super::IpFamily;
use super::request::ServiceKey;

/// A failed allocation. `reason()` is the stable name for conditions and metrics; `Display`
/// is the sentence for events.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AllocationError {
    /// Neither the namespace nor the ConfigMap's global keys define a pool.
    #[error(
        "Service {service}: no address pool for namespace `{ns}` (none of `cidr-{ns}`, \
         `range-{ns}`, `cidr-global`, `range-global` is set)",
        ns = service.namespace
    )]
    NoPool {
        /// The Service.
        service: ServiceKey,
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
    /// The stable CamelCase name of the reason, for conditions and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            AllocationError::NoPool { .. } => "NoPool",
            AllocationError::OutOfAddresses { .. } => "OutOfAddresses",
            AllocationError::AlreadyAllocated { .. } => "AlreadyAllocated",
            AllocationError::NotInPool { .. } => "NotInPool",
            AllocationError::FamilyUnavailable { .. } => "FamilyUnavailable",
            AllocationError::InvalidRequest { .. } => "InvalidRequest",
        }
    }
}
