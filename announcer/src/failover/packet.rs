//! The heartbeat on the wire, its authentication and replay protection.
//!
//! ```text
//!   "FLB" 0x01 │ Heartbeat (protobuf) │ HMAC-SHA256(key, everything before), 32 bytes
//! ```
//!
//! The key is the cluster's (`SyncRequest.heartbeat_key`, sent by the provider over mTLS);
//! after a key change the previous key is still accepted, so nodes synced a moment apart keep
//! hearing each other. A heartbeat is accepted only when `(sent_unix_ms, seq)` is newer than
//! the last one accepted from that node and `sent_unix_ms` is within [`MAX_SKEW`] of our
//! clock: a replayed heartbeat can neither take an address nor keep a dead owner alive
//! (except, after this announcer restarts, a packet captured in the last two seconds).
//! The message is protobuf (prost, already used for gRPC); only the framing and the HMAC
//! (`ring`, already in the build through rustls) are ours.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use prost::Message;
use ring::hmac;

const MAGIC: &[u8; 4] = b"FLB\x01";
const TAG_LEN: usize = 32;

/// How far a heartbeat's clock may be from ours, in ms (nodes run NTP).
pub const MAX_SKEW: u64 = 2_000;

/// The heartbeat body.
#[derive(Clone, PartialEq, Message)]
pub struct Heartbeat {
    /// The sender's node name.
    #[prost(string, tag = "1")]
    pub node: String,
    /// The sender's clock, unix ms.
    #[prost(uint64, tag = "2")]
    pub sent_unix_ms: u64,
    /// Counts the sender's heartbeats (orders two sent within one ms).
    #[prost(uint64, tag = "3")]
    pub seq: u64,
    /// Shared addresses the sender holds (4 or 16 bytes each).
    #[prost(bytes = "vec", repeated, tag = "4")]
    pub held: Vec<Vec<u8>>,
    /// Shared addresses the sender is ready to hold.
    #[prost(bytes = "vec", repeated, tag = "5")]
    pub ready: Vec<Vec<u8>>,
    /// A heartbeat too long for one datagram is sent in parts: `seq` of its first part.
    #[prost(uint64, tag = "6")]
    pub batch: u64,
    /// This part's index, from 0.
    #[prost(uint32, tag = "7")]
    pub part: u32,
    /// How many parts the heartbeat has (0 or 1: one datagram).
    #[prost(uint32, tag = "8")]
    pub parts: u32,
}

/// At most this many bytes of addresses per datagram, so a heartbeat datagram stays under a
/// 1,500-byte MTU (no IP fragmentation: one lost fragment would lose the whole heartbeat).
pub const MAX_ADDRESS_BYTES: usize = 1_100;

/// Splits (held, ready) into parts of at most [`MAX_ADDRESS_BYTES`] (always at least one).
pub fn split(held: &[IpAddr], ready: &[IpAddr]) -> Vec<(Vec<IpAddr>, Vec<IpAddr>)> {
    let cost = |a: &IpAddr| if a.is_ipv4() { 6 } else { 18 };
    let mut parts = vec![(Vec::new(), Vec::new())];
    let mut used = 0;
    let tagged = held
        .iter()
        .map(|a| (true, a))
        .chain(ready.iter().map(|a| (false, a)));
    for (is_held, address) in tagged {
        if used + cost(address) > MAX_ADDRESS_BYTES {
            parts.push((Vec::new(), Vec::new()));
            used = 0;
        }
        used += cost(address);
        let (h, r) = parts.last_mut().expect("at least one part");
        if is_held {
            h.push(*address)
        } else {
            r.push(*address)
        }
    }
    parts
}

/// The parts of one heartbeat received so far.
#[derive(Default)]
struct Partial {
    batch: u64,
    parts: u32,
    got: BTreeSet<u32>,
    held: BTreeSet<IpAddr>,
    ready: BTreeSet<IpAddr>,
}

/// Puts a heartbeat sent in parts back together, per sender.
#[derive(Default)]
pub struct Reassembly {
    partial: HashMap<String, Partial>,
}

impl Reassembly {
    /// Takes one accepted part; returns the complete (held, ready) sets once every part of
    /// its heartbeat arrived (at once for a one-datagram heartbeat). A newer heartbeat
    /// replaces an incomplete older one.
    pub fn add(&mut self, heartbeat: &Heartbeat) -> Option<(BTreeSet<IpAddr>, BTreeSet<IpAddr>)> {
        let held = from_bytes(&heartbeat.held);
        let ready = from_bytes(&heartbeat.ready);
        if heartbeat.parts <= 1 {
            self.partial.remove(&heartbeat.node);
            return Some((held, ready));
        }
        let entry = self.partial.entry(heartbeat.node.clone()).or_default();
        if entry.batch != heartbeat.batch || entry.parts != heartbeat.parts {
            *entry = Partial {
                batch: heartbeat.batch,
                parts: heartbeat.parts,
                ..Partial::default()
            };
        }
        entry.got.insert(heartbeat.part);
        entry.held.extend(held);
        entry.ready.extend(ready);
        if entry.got.len() as u32 == entry.parts {
            let done = self.partial.remove(&heartbeat.node)?;
            return Some((done.held, done.ready));
        }
        None
    }
}

/// Why a datagram was not accepted (the metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// Too short, wrong magic, or a body that does not decode.
    Malformed,
    /// No key, or the tag does not verify with the current or previous key.
    Auth,
    /// Not newer than the last heartbeat accepted from that node.
    Replay,
    /// Its clock is more than [`MAX_SKEW`] from ours.
    Stale,
    /// From a node that is not one of our peers.
    UnknownPeer,
}

impl Rejected {
    pub fn label(self) -> &'static str {
        match self {
            Rejected::Malformed => "malformed",
            Rejected::Auth => "auth",
            Rejected::Replay => "replay",
            Rejected::Stale => "stale",
            Rejected::UnknownPeer => "unknown_peer",
        }
    }
}

/// The current and previous heartbeat keys.
#[derive(Default)]
pub struct Keys {
    current: Option<(Vec<u8>, hmac::Key)>,
    previous: Option<hmac::Key>,
}

impl Keys {
    /// Installs `key` (32 bytes) unless it is already current; the current one becomes the
    /// previous one.
    pub fn set(&mut self, key: &[u8]) {
        if self.current.as_ref().is_some_and(|(bytes, _)| bytes == key) {
            return;
        }
        let new = (key.to_vec(), hmac::Key::new(hmac::HMAC_SHA256, key));
        self.previous = self.current.replace(new).map(|(_, k)| k);
    }

    pub fn is_set(&self) -> bool {
        self.current.is_some()
    }

    /// The datagram for `heartbeat`, signed with the current key.
    pub fn seal(&self, heartbeat: &Heartbeat) -> Option<Vec<u8>> {
        let (_, key) = self.current.as_ref()?;
        let mut out = MAGIC.to_vec();
        heartbeat.encode(&mut out).ok()?;
        let tag = hmac::sign(key, &out);
        out.extend_from_slice(tag.as_ref());
        Some(out)
    }

    /// The heartbeat in `datagram`, when its tag verifies.
    pub fn open(&self, datagram: &[u8]) -> Result<Heartbeat, Rejected> {
        if datagram.len() < MAGIC.len() + TAG_LEN || !datagram.starts_with(MAGIC) {
            return Err(Rejected::Malformed);
        }
        let (signed, tag) = datagram.split_at(datagram.len() - TAG_LEN);
        let verifies = |key: &hmac::Key| hmac::verify(key, signed, tag).is_ok();
        let current = self.current.as_ref().map(|(_, k)| k);
        if !current.into_iter().chain(&self.previous).any(verifies) {
            return Err(Rejected::Auth);
        }
        Heartbeat::decode(&signed[MAGIC.len()..]).map_err(|_| Rejected::Malformed)
    }
}

/// The newest `(sent_unix_ms, seq)` accepted from each node.
#[derive(Default)]
pub struct ReplayGuard {
    last: HashMap<String, (u64, u64)>,
}

impl ReplayGuard {
    /// Accepts `heartbeat` (and remembers it) when it is fresh and newer than the last one.
    pub fn check(&mut self, heartbeat: &Heartbeat, now_unix_ms: u64) -> Result<(), Rejected> {
        if heartbeat.sent_unix_ms.abs_diff(now_unix_ms) > MAX_SKEW {
            return Err(Rejected::Stale);
        }
        let stamp = (heartbeat.sent_unix_ms, heartbeat.seq);
        match self.last.get(&heartbeat.node) {
            Some(last) if stamp <= *last => Err(Rejected::Replay),
            _ => {
                self.last.insert(heartbeat.node.clone(), stamp);
                Ok(())
            }
        }
    }
}

/// Addresses as heartbeat bytes.
pub fn to_bytes(addresses: &[IpAddr]) -> Vec<Vec<u8>> {
    addresses
        .iter()
        .map(|a| match a {
            IpAddr::V4(v4) => v4.octets().to_vec(),
            IpAddr::V6(v6) => v6.octets().to_vec(),
        })
        .collect()
}

/// Heartbeat bytes as addresses (items of another length are skipped).
pub fn from_bytes(items: &[Vec<u8>]) -> BTreeSet<IpAddr> {
    items
        .iter()
        .filter_map(|b| match b.len() {
            4 => <[u8; 4]>::try_from(b.as_slice()).ok().map(IpAddr::from),
            16 => <[u8; 16]>::try_from(b.as_slice()).ok().map(IpAddr::from),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beat(node: &str, sent: u64, seq: u64) -> Heartbeat {
        Heartbeat {
            node: node.into(),
            sent_unix_ms: sent,
            seq,
            held: to_bytes(&[
                "192.0.2.10".parse().unwrap(),
                "2001:db8::10".parse().unwrap(),
            ]),
            ready: Vec::new(),
            ..Heartbeat::default()
        }
    }

    fn keys(key: &[u8]) -> Keys {
        let mut keys = Keys::default();
        keys.set(key);
        keys
    }

    #[test]
    fn a_sealed_heartbeat_opens_with_the_same_key_and_carries_its_addresses() {
        let keys = keys(&[7; 32]);
        let datagram = keys.seal(&beat("node-a", 1_000, 1)).unwrap();
        assert_eq!(&datagram[..4], b"FLB\x01");
        let opened = keys.open(&datagram).unwrap();
        assert_eq!(opened, beat("node-a", 1_000, 1));
        let held: Vec<String> = from_bytes(&opened.held)
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(held, ["192.0.2.10", "2001:db8::10"]);
    }

    #[test]
    fn a_wrong_key_a_flipped_bit_or_garbage_is_refused() {
        let datagram = keys(&[7; 32]).seal(&beat("node-a", 1_000, 1)).unwrap();
        assert_eq!(keys(&[8; 32]).open(&datagram), Err(Rejected::Auth));
        let mut flipped = datagram.clone();
        flipped[6] ^= 1;
        assert_eq!(keys(&[7; 32]).open(&flipped), Err(Rejected::Auth));
        assert_eq!(
            keys(&[7; 32]).open(b"FLB\x01short"),
            Err(Rejected::Malformed)
        );
        assert_eq!(Keys::default().open(&datagram), Err(Rejected::Auth));
    }

    #[test]
    fn after_a_key_change_the_previous_key_still_verifies_and_the_one_before_does_not() {
        let old = keys(&[1; 32]).seal(&beat("node-a", 1_000, 1)).unwrap();
        let older = keys(&[0; 32]).seal(&beat("node-a", 1_000, 1)).unwrap();
        let mut rotated = keys(&[0; 32]);
        rotated.set(&[1; 32]);
        rotated.set(&[2; 32]);
        assert!(rotated.open(&old).is_ok());
        assert_eq!(rotated.open(&older), Err(Rejected::Auth));
    }

    #[test]
    fn a_long_heartbeat_is_split_under_the_mtu_and_put_back_together() {
        let held: Vec<IpAddr> = (0..4000u32)
            .map(|i| {
                IpAddr::from(std::net::Ipv6Addr::from(
                    0x2001_0db8_u128 << 96 | u128::from(i),
                ))
            })
            .collect();
        let ready: Vec<IpAddr> = vec!["192.0.2.1".parse().unwrap()];
        let parts = split(&held, &ready);
        assert!(parts.len() > 60, "{} parts", parts.len());
        let keys = keys(&[7; 32]);
        let mut whole = Reassembly::default();
        let mut done = None;
        for (i, (h, r)) in parts.iter().enumerate() {
            let beat = Heartbeat {
                node: "node-a".into(),
                sent_unix_ms: 1_000,
                seq: 10 + i as u64,
                held: to_bytes(h),
                ready: to_bytes(r),
                batch: 10,
                part: i as u32,
                parts: parts.len() as u32,
            };
            let datagram = keys.seal(&beat).unwrap();
            assert!(
                datagram.len() <= 1_400,
                "datagram of {} bytes",
                datagram.len()
            );
            let opened = keys.open(&datagram).unwrap();
            assert_eq!(done, None, "complete before the last part");
            done = whole.add(&opened);
        }
        let (got_held, got_ready) = done.expect("complete after the last part");
        assert_eq!(got_held.len(), 4000);
        assert_eq!(got_ready.into_iter().collect::<Vec<_>>(), ready);
        // One datagram: complete at once.
        assert!(whole.add(&beat("node-b", 1, 1)).is_some());
    }

    #[test]
    fn a_replayed_or_older_heartbeat_and_one_from_a_skewed_clock_are_refused() {
        let mut guard = ReplayGuard::default();
        assert_eq!(guard.check(&beat("node-a", 10_000, 5), 10_100), Ok(()));
        assert_eq!(
            guard.check(&beat("node-a", 10_000, 5), 10_200),
            Err(Rejected::Replay)
        );
        assert_eq!(
            guard.check(&beat("node-a", 9_900, 9), 10_200),
            Err(Rejected::Replay)
        );
        assert_eq!(guard.check(&beat("node-a", 10_000, 6), 10_200), Ok(()));
        // A restarted sender: its clock moved on, its counter started again.
        assert_eq!(guard.check(&beat("node-a", 10_300, 0), 10_300), Ok(()));
        assert_eq!(
            guard.check(&beat("node-b", 7_000, 1), 10_300),
            Err(Rejected::Stale)
        );
        assert_eq!(
            guard.check(&beat("node-b", 13_000, 1), 10_300),
            Err(Rejected::Stale)
        );
    }
}
