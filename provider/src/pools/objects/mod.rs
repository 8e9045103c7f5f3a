//! Pools defined as Kubernetes objects: FerroLB's own `LoadBalancerPool`, OpenELB's `Eip` and
//! Cilium's `CiliumLoadBalancerIPPool`, all read into one source-neutral [`ObjectPool`].
//!
//! ```text
//!  object JSON ──parse::{lbpool,eip,cilium}──► ObjectPool ──conflicts::judge──► Pool
//!  (any source)      (one reading per kind)       (blocks,     (later-created     (what the
//!                                                  selector…)   overlapping pool   allocator
//!                                                               gets no addresses) uses)
//! ```
//! Each kind keeps its own meaning where the seeds define one (an Eip's default protocol is
//! `bgp`; a Cilium pool uses every address of a CIDR unless `allowFirstLastIPs: No`); what
//! the allocator sees is the same [`Pool`] the ConfigMap produces, plus an [`ObjectPool`]
//! describing where it came from and whom it serves. Pure: no I/O.

pub mod conflicts;
pub mod parse;
pub mod selector;
pub mod status;

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

use super::model::{AddrRange, Pool, SearchOrder};
use crate::announce::Mode;
use crate::ipam::ranges::to_number;
pub use selector::{Selector, Subject};

/// Which kind of object a pool came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PoolKind {
    /// `ferrolb.io/v1alpha1` `LoadBalancerPool` (short name `lbpool`).
    LoadBalancerPool,
    /// OpenELB's `network.kubesphere.io/v1alpha2` `Eip`.
    Eip,
    /// Cilium's `cilium.io/v2alpha1` `CiliumLoadBalancerIPPool`.
    Cilium,
}

impl PoolKind {
    /// The object's `kind`.
    pub fn kind(self) -> &'static str {
        match self {
            PoolKind::LoadBalancerPool => "LoadBalancerPool",
            PoolKind::Eip => "Eip",
            PoolKind::Cilium => "CiliumLoadBalancerIPPool",
        }
    }

    /// The prefix of the pool's name in conditions, Events and metrics (`lbpool/blue`).
    pub fn prefix(self) -> &'static str {
        match self {
            PoolKind::LoadBalancerPool => "lbpool",
            PoolKind::Eip => "eip",
            PoolKind::Cilium => "cilium",
        }
    }

    /// Every kind, in the order sources are listed.
    pub const ALL: [PoolKind; 3] = [PoolKind::LoadBalancerPool, PoolKind::Eip, PoolKind::Cilium];
}

impl fmt::Display for PoolKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind())
    }
}

/// One block of addresses as the object writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Block {
    /// `cidr: 10.0.10.0/24`.
    Cidr(IpNet),
    /// `start`/`stop` (a single address when both are equal).
    Range(IpAddr, IpAddr),
}

impl Block {
    /// The addresses the block gives. With `skip_first_last`, a CIDR loses its first and last
    /// address unless it has two or fewer (Cilium's `allowFirstLastIPs: No`).
    pub fn usable(&self, skip_first_last: bool) -> Option<AddrRange> {
        match *self {
            Block::Cidr(net) => {
                let (family, start) = to_number(net.network());
                let (_, end) = to_number(net.broadcast());
                let trim = skip_first_last && end - start >= 2;
                let (start, end) = if trim {
                    (start + 1, end - 1)
                } else {
                    (start, end)
                };
                Some(AddrRange::from_numbers(family, start, end))
            }
            Block::Range(start, stop) => AddrRange::new(start, stop),
        }
    }

    /// All addresses of the block (for overlap checks).
    pub fn whole(&self) -> Option<AddrRange> {
        self.usable(false)
    }

    /// How Cilium's messages name the block's form.
    pub fn form(&self) -> &'static str {
        match self {
            Block::Cidr(_) => "CIDR",
            Block::Range(..) => "range",
        }
    }
}

impl fmt::Display for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Block::Cidr(net) => write!(f, "{net}"),
            Block::Range(start, stop) if start == stop => write!(f, "{start}"),
            Block::Range(start, stop) => write!(f, "{start}-{stop}"),
        }
    }
}

/// BGP attributes a pool gives the routes of its addresses (validated when parsed).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolBgp {
    /// Standard communities, `65000:100` or a well-known name such as `no-export`.
    pub communities: Vec<String>,
    /// Large communities, `65000:1:2`.
    pub large_communities: Vec<String>,
    /// LOCAL_PREF for iBGP peers.
    pub local_preference: Option<u32>,
}

/// The object's identity and age.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectMeta {
    /// metadata.name.
    pub name: String,
    /// metadata.uid.
    pub uid: String,
    /// metadata.generation (for observedGeneration).
    pub generation: i64,
    /// metadata.creationTimestamp, unix seconds (older pools win conflicts).
    pub created: i64,
}

/// A pool read from an object, whatever its kind. See the module doc.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectPool {
    /// Where it came from.
    pub kind: PoolKind,
    /// Name, uid, generation, age.
    pub meta: ObjectMeta,
    /// The blocks that parsed, in object order.
    pub blocks: Vec<Block>,
    /// Skip the first and last address of CIDR blocks.
    pub skip_first_last: bool,
    /// Which Services may take addresses (None: all).
    pub service_selector: Option<Selector>,
    /// No new allocations; existing ones are kept.
    pub disabled: bool,
    /// The mode its addresses are announced in (None: the Service's or the default).
    pub mode: Option<Mode>,
    /// Interface name or `can_reach:<address>`.
    pub interface: Option<String>,
    /// Which nodes may announce its addresses (None: all eligible nodes).
    pub node_selector: Option<Selector>,
    /// BGP attributes for its routes.
    pub bgp: PoolBgp,
    /// Which end free addresses are taken from.
    pub search_order: SearchOrder,
    /// Among several matching pools, the highest priority is tried first.
    pub priority: i32,
    /// Only Services that ask for OpenELB (`lb.kubesphere.io/v1alpha1: openelb`) use it
    /// (OpenELB's Eips never serve other Services).
    pub openelb_only: bool,
    /// Fields that could not be used, as sentences naming the field (the rest still counts).
    pub problems: Vec<String>,
}

impl ObjectPool {
    /// An empty pool of `kind` named `name` (tests and parsers start here).
    pub fn new(kind: PoolKind, name: &str) -> Self {
        ObjectPool {
            kind,
            meta: ObjectMeta {
                name: name.to_string(),
                ..ObjectMeta::default()
            },
            blocks: Vec::new(),
            skip_first_last: false,
            service_selector: None,
            disabled: false,
            mode: None,
            interface: None,
            node_selector: None,
            bgp: PoolBgp::default(),
            search_order: SearchOrder::Ascending,
            priority: 0,
            openelb_only: false,
            problems: Vec::new(),
        }
    }

    /// The pool's name as the allocator, Events and metrics use it: `<prefix>/<name>`.
    pub fn pool_name(&self) -> String {
        format!("{}/{}", self.kind.prefix(), self.meta.name)
    }

    /// `kind 'name'` for messages.
    pub fn describe(&self) -> String {
        format!("{} '{}'", self.kind, self.meta.name)
    }

    /// The allocator's pool: merged usable ranges plus this description. `conflict` (from
    /// [`conflicts::judge`]) makes it give no new addresses.
    pub fn to_pool(self: &Arc<Self>, conflict: Option<String>) -> Pool {
        let ranges = self
            .blocks
            .iter()
            .filter_map(|b| b.usable(self.skip_first_last))
            .collect();
        let mut pool = Pool::new(self.pool_name());
        pool.ranges = super::merge(ranges);
        pool.search_order = self.search_order;
        pool.interface = self.interface.clone();
        pool.avoid_buggy_ips = false;
        pool.object = Some(super::model::PoolOrigin {
            object: Arc::clone(self),
            conflict,
        });
        pool
    }
}
