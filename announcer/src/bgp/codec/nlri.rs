//! Address families (RFC 4760 §3: AFI/SAFI) and the NLRI prefix encoding shared by the UPDATE
//! NLRI fields and MP_REACH/MP_UNREACH (RFC 4271 §4.3: length in bits, then just enough
//! octets to hold the prefix).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// A BGP address family: AFI (RFC 4760 §3, IANA "Address Family Numbers") and SAFI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Family {
    pub afi: u16,
    pub safi: u8,
}

impl Family {
    pub const AFI_IPV4: u16 = 1;
    pub const AFI_IPV6: u16 = 2;
    pub const SAFI_UNICAST: u8 = 1;
    pub const IPV4_UNICAST: Family = Family {
        afi: Self::AFI_IPV4,
        safi: Self::SAFI_UNICAST,
    };
    pub const IPV6_UNICAST: Family = Family {
        afi: Self::AFI_IPV6,
        safi: Self::SAFI_UNICAST,
    };

    /// The family a prefix is carried in.
    pub fn of(prefix: &IpNet) -> Family {
        match prefix {
            IpNet::V4(_) => Family::IPV4_UNICAST,
            IpNet::V6(_) => Family::IPV6_UNICAST,
        }
    }
}

impl fmt::Display for Family {
    /// `ipv4-unicast`, `ipv6-unicast`, or `afi 25 safi 65` for the rest.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Family::IPV4_UNICAST => write!(f, "ipv4-unicast"),
            Family::IPV6_UNICAST => write!(f, "ipv6-unicast"),
            Family { afi, safi } => write!(f, "afi {afi} safi {safi}"),
        }
    }
}

/// How many bytes `prefix` takes in an NLRI field.
pub(super) fn encoded_len(prefix: &IpNet) -> usize {
    1 + usize::from(prefix.prefix_len()).div_ceil(8)
}

/// Appends one prefix in NLRI encoding.
pub(super) fn encode_prefix(prefix: &IpNet, out: &mut Vec<u8>) {
    let len = prefix.prefix_len();
    let octets = usize::from(len).div_ceil(8);
    out.push(len);
    match prefix {
        IpNet::V4(net) => out.extend_from_slice(&net.network().octets()[..octets]),
        IpNet::V6(net) => out.extend_from_slice(&net.network().octets()[..octets]),
    }
}

/// Reads a whole NLRI field of the given AFI. The error names the offending prefix; the
/// caller maps it to "Invalid Network Field" or treat-as-withdraw as the RFCs require.
pub(super) fn decode_prefixes(mut bytes: &[u8], afi: u16) -> Result<Vec<IpNet>, String> {
    let max_len: u8 = if afi == Family::AFI_IPV4 { 32 } else { 128 };
    let mut prefixes = Vec::new();
    while let Some((&len, rest)) = bytes.split_first() {
        if len > max_len {
            return Err(format!("prefix length {len} exceeds {max_len}"));
        }
        let octets = usize::from(len).div_ceil(8);
        if rest.len() < octets {
            return Err(format!(
                "prefix of length {len} needs {octets} bytes but only {} remain",
                rest.len()
            ));
        }
        let (addr_bytes, remaining) = rest.split_at(octets);
        // Bits beyond the prefix length are ignored (RFC 4271 §4.3: "trailing bits ... are
        // irrelevant"), so the network address is masked.
        let prefix = if afi == Family::AFI_IPV4 {
            let mut full = [0u8; 4];
            full[..octets].copy_from_slice(addr_bytes);
            Ipv4Net::new(Ipv4Addr::from(full), len).map(|net| IpNet::V4(net.trunc()))
        } else {
            let mut full = [0u8; 16];
            full[..octets].copy_from_slice(addr_bytes);
            Ipv6Net::new(Ipv6Addr::from(full), len).map(|net| IpNet::V6(net.trunc()))
        };
        prefixes.push(prefix.map_err(|err| format!("prefix length {len}: {err}"))?);
        bytes = remaining;
    }
    Ok(prefixes)
}
