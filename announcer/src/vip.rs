//! VIP mode: the address is put on the interface so the kernel answers ARP/NDP for it.
//!
//! The address is added as /32 or /128 over netlink with `IFA_F_NODAD` (no duplicate address
//! detection, so it is usable at once and never ends up "dadfailed", kube-vip #523) and a
//! finite valid/preferred lifetime (`--vip-lifetime`, default 300 s) that a task renews every
//! third of it. If the announcer dies without cleaning up, the kernel removes the address when
//! the lifetime runs out, and DHCP clients and CNIs that skip non-permanent addresses do not
//! adopt it (PureLB's approach).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;
use std::time::Duration;

use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags, CacheInfo};
use rtnetlink::{AddressMessageBuilder, Handle};
use tokio::task::JoinHandle;

/// A netlink failure while adding or removing a VIP.
#[derive(Debug, thiserror::Error)]
#[error("{action} {address} on interface index {index}: {source}")]
pub struct VipError {
    action: &'static str,
    address: IpAddr,
    index: u32,
    source: rtnetlink::Error,
}

struct Held {
    index: u32,
    renew: JoinHandle<()>,
}

/// The VIPs this announcer put on interfaces.
pub struct VipManager {
    handle: Handle,
    lifetime: Duration,
    held: Mutex<HashMap<IpAddr, Held>>,
}

fn host_prefix(address: IpAddr) -> u8 {
    if address.is_ipv4() { 32 } else { 128 }
}

async fn add_address(
    handle: &Handle,
    index: u32,
    address: IpAddr,
    lifetime: Duration,
) -> Result<(), VipError> {
    let mut request = handle
        .address()
        .add(index, address, host_prefix(address))
        .replace();
    let seconds = u32::try_from(lifetime.as_secs()).unwrap_or(u32::MAX).max(1);
    let message = request.message_mut();
    message
        .attributes
        .push(AddressAttribute::Flags(AddressFlags::Nodad));
    let mut cache_info = CacheInfo::default();
    cache_info.ifa_preferred = seconds;
    cache_info.ifa_valid = seconds;
    message
        .attributes
        .push(AddressAttribute::CacheInfo(cache_info));
    request.execute().await.map_err(|source| VipError {
        action: "adding",
        address,
        index,
        source,
    })
}

impl VipManager {
    /// Opens a netlink connection (needs `CAP_NET_ADMIN` to change addresses).
    pub fn new(lifetime: Duration) -> io::Result<Self> {
        let (connection, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(connection);
        Ok(Self {
            handle,
            lifetime,
            held: Mutex::new(HashMap::new()),
        })
    }

    /// Whether `address` is a VIP this announcer added.
    pub fn holds(&self, address: IpAddr) -> bool {
        self.held
            .lock()
            .map(|h| h.contains_key(&address))
            .unwrap_or(false)
    }

    /// Adds `address` to interface `index` (moving it if it was on another one) and keeps
    /// renewing its lifetime.
    pub async fn add(&self, index: u32, address: IpAddr) -> Result<(), VipError> {
        let previous = self
            .held
            .lock()
            .ok()
            .and_then(|h| h.get(&address).map(|held| held.index));
        if let Some(old_index) = previous
            && old_index != index
        {
            self.remove(address).await?;
        }
        add_address(&self.handle, index, address, self.lifetime).await?;
        let handle = self.handle.clone();
        let lifetime = self.lifetime;
        let renew = tokio::spawn(async move {
            let period = (lifetime / 3).max(Duration::from_secs(1));
            loop {
                tokio::time::sleep(period).await;
                if let Err(e) = add_address(&handle, index, address, lifetime).await {
                    tracing::warn!("renewing VIP lifetime: {e}");
                }
            }
        });
        if let Ok(mut held) = self.held.lock()
            && let Some(old) = held.insert(address, Held { index, renew })
        {
            old.renew.abort();
        }
        Ok(())
    }

    /// Removes `address` if this announcer added it. An address already gone is not an error.
    pub async fn remove(&self, address: IpAddr) -> Result<(), VipError> {
        let Some(held) = self.held.lock().ok().and_then(|mut h| h.remove(&address)) else {
            return Ok(());
        };
        held.renew.abort();
        let message = match address {
            IpAddr::V4(v4) => AddressMessageBuilder::<Ipv4Addr>::new()
                .index(held.index)
                .address(v4, 32)
                .build(),
            IpAddr::V6(v6) => AddressMessageBuilder::<Ipv6Addr>::new()
                .index(held.index)
                .address(v6, 128)
                .build(),
        };
        match self.handle.address().del(message).execute().await {
            Ok(()) => Ok(()),
            // EADDRNOTAVAIL: somebody (or the lifetime) removed it already.
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::EADDRNOTAVAIL => {
                Ok(())
            }
            Err(source) => Err(VipError {
                action: "removing",
                address,
                index: held.index,
                source,
            }),
        }
    }

    /// Removes every VIP this announcer added (shutdown).
    pub async fn remove_all(&self) {
        let addresses: Vec<IpAddr> = self
            .held
            .lock()
            .map(|h| h.keys().copied().collect())
            .unwrap_or_default();
        for address in addresses {
            if let Err(e) = self.remove(address).await {
                tracing::warn!("{e}");
            }
        }
    }
}
