//! BFD Control packets (RFC 5880 §4.1) and their authentication section (§4.2–4.4, §6.7):
//! pure encode/decode, no state. Sequence-number policy lives in the session core
//! (`session.rs`); this module only computes and checks digests.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! |Vers |  Diag   |Sta|P|F|C|A|D|M|  Detect Mult  |    Length     |
//! |                       My Discriminator                        |
//! |                      Your Discriminator                       |
//! |                    Desired Min TX Interval                    |
//! |                   Required Min RX Interval                    |
//! |                 Required Min Echo RX Interval                 |
//! |   Auth Type   |   Auth Len    |    Authentication Data...     |
//! ```
//!
//! Keyed MD5 (auth types 2 and 3) is not offered: the tree has no MD5 implementation and
//! keyed SHA1 (types 4 and 5) is what BIRD, Junos and IOS-XR all accept.

use ring::digest;

/// Length of the mandatory section (§4.1).
pub const MANDATORY_LEN: usize = 24;
/// The protocol version we speak (§4.1).
pub const VERSION: u8 = 1;

/// Session states as carried on the wire (§4.1 "Sta").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    AdminDown = 0,
    Down = 1,
    Init = 2,
    Up = 3,
}

impl State {
    fn from_bits(bits: u8) -> State {
        match bits & 0x3 {
            0 => State::AdminDown,
            1 => State::Down,
            2 => State::Init,
            _ => State::Up,
        }
    }

    /// Lower-case name used in status and logs ("admin-down", "down", "init", "up").
    pub fn name(self) -> &'static str {
        match self {
            State::AdminDown => "admin-down",
            State::Down => "down",
            State::Init => "init",
            State::Up => "up",
        }
    }
}

/// Diagnostic codes (§4.1 "Diag").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Diagnostic(pub u8);

impl Diagnostic {
    pub const NONE: Diagnostic = Diagnostic(0);
    pub const CONTROL_DETECTION_TIME_EXPIRED: Diagnostic = Diagnostic(1);
    pub const NEIGHBOR_SIGNALED_DOWN: Diagnostic = Diagnostic(3);
    pub const ADMINISTRATIVELY_DOWN: Diagnostic = Diagnostic(7);

    /// The RFC's wording, for status and logs.
    pub fn describe(self) -> &'static str {
        match self.0 {
            0 => "no diagnostic",
            1 => "control detection time expired",
            2 => "echo function failed",
            3 => "neighbor signaled session down",
            4 => "forwarding plane reset",
            5 => "path down",
            6 => "concatenated path down",
            7 => "administratively down",
            8 => "reverse concatenated path down",
            _ => "reserved diagnostic",
        }
    }
}

/// Authentication types we implement (§4.2–4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthType {
    /// Type 1: the password in clear.
    SimplePassword,
    /// Type 4: SHA1 over the packet with the key, sequence number may repeat.
    KeyedSha1,
    /// Type 5: as type 4, the sequence number increases with every packet.
    MeticulousKeyedSha1,
}

impl AuthType {
    pub fn code(self) -> u8 {
        match self {
            AuthType::SimplePassword => 1,
            AuthType::KeyedSha1 => 4,
            AuthType::MeticulousKeyedSha1 => 5,
        }
    }

    pub fn meticulous(self) -> bool {
        self == AuthType::MeticulousKeyedSha1
    }
}

/// Key material of one session (the key itself is never logged).
#[derive(Clone, PartialEq, Eq)]
pub struct AuthKey {
    pub kind: AuthType,
    pub key_id: u8,
    /// 1..=16 bytes for a simple password, 1..=20 bytes for SHA1 keys.
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthKey")
            .field("kind", &self.kind)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// The authentication section as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSection {
    pub auth_type: u8,
    pub key_id: u8,
    /// Sequence number (types 2–5); 0 for a simple password.
    pub sequence: u32,
}

/// One Control packet (the Demand and Multipoint bits are decoded so they can be refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlPacket {
    pub diagnostic: Diagnostic,
    pub state: State,
    pub poll: bool,
    pub final_: bool,
    pub control_plane_independent: bool,
    pub demand: bool,
    pub multipoint: bool,
    pub detect_mult: u8,
    pub my_discriminator: u32,
    pub your_discriminator: u32,
    /// Microseconds.
    pub desired_min_tx: u32,
    /// Microseconds.
    pub required_min_rx: u32,
    /// Microseconds; we never run the echo function, so we send 0.
    pub required_min_echo_rx: u32,
    pub auth: Option<AuthSection>,
}

/// Why a received packet was discarded (§6.8.6 lists the checks).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("packet of {0} bytes is shorter than the 24-byte mandatory section")]
    Short(usize),
    #[error("version {0} is not 1")]
    Version(u8),
    #[error(
        "length field {field} does not fit the {received} bytes received (or the auth section)"
    )]
    Length { field: u8, received: usize },
    #[error("detect multiplier is 0")]
    ZeroDetectMult,
    #[error("multipoint bit set")]
    Multipoint,
    #[error("my discriminator is 0")]
    ZeroMyDiscriminator,
    #[error("authentication section of type {auth_type} with length {len} is malformed")]
    AuthSection { auth_type: u8, len: u8 },
}

impl ControlPacket {
    /// Decodes and applies the packet-only checks of §6.8.6 (version, length, detect mult,
    /// multipoint, my discriminator, auth section shape).
    pub fn decode(bytes: &[u8]) -> Result<ControlPacket, DecodeError> {
        if bytes.len() < MANDATORY_LEN {
            return Err(DecodeError::Short(bytes.len()));
        }
        let version = bytes[0] >> 5;
        if version != VERSION {
            return Err(DecodeError::Version(version));
        }
        let flags = bytes[1];
        let auth_present = flags & 0x04 != 0;
        let length = bytes[3];
        let min_len = if auth_present { 26 } else { MANDATORY_LEN };
        if usize::from(length) < min_len || usize::from(length) > bytes.len() {
            return Err(DecodeError::Length {
                field: length,
                received: bytes.len(),
            });
        }
        let word = |at: usize| {
            u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let packet = ControlPacket {
            diagnostic: Diagnostic(bytes[0] & 0x1f),
            state: State::from_bits(flags >> 6),
            poll: flags & 0x20 != 0,
            final_: flags & 0x10 != 0,
            control_plane_independent: flags & 0x08 != 0,
            demand: flags & 0x02 != 0,
            multipoint: flags & 0x01 != 0,
            detect_mult: bytes[2],
            my_discriminator: word(4),
            your_discriminator: word(8),
            desired_min_tx: word(12),
            required_min_rx: word(16),
            required_min_echo_rx: word(20),
            auth: if auth_present {
                Some(decode_auth(&bytes[MANDATORY_LEN..usize::from(length)])?)
            } else {
                None
            },
        };
        if packet.detect_mult == 0 {
            return Err(DecodeError::ZeroDetectMult);
        }
        if packet.multipoint {
            return Err(DecodeError::Multipoint);
        }
        if packet.my_discriminator == 0 {
            return Err(DecodeError::ZeroMyDiscriminator);
        }
        Ok(packet)
    }

    /// Encodes the packet; with `key`, appends the authentication section of §4.2/§4.4
    /// (`sequence` is used by the SHA1 types) and sets the A bit.
    pub fn encode(&self, key: Option<(&AuthKey, u32)>) -> Vec<u8> {
        let mut flags = (self.state as u8) << 6;
        for (set, bit) in [
            (self.poll, 0x20),
            (self.final_, 0x10),
            (self.control_plane_independent, 0x08),
            (key.is_some(), 0x04),
            (self.demand, 0x02),
            (self.multipoint, 0x01),
        ] {
            if set {
                flags |= bit;
            }
        }
        let mut out = Vec::with_capacity(MANDATORY_LEN + 28);
        out.push((VERSION << 5) | (self.diagnostic.0 & 0x1f));
        out.push(flags);
        out.push(self.detect_mult);
        out.push(0); // length, set below
        for word in [
            self.my_discriminator,
            self.your_discriminator,
            self.desired_min_tx,
            self.required_min_rx,
            self.required_min_echo_rx,
        ] {
            out.extend_from_slice(&word.to_be_bytes());
        }
        if let Some((key, sequence)) = key {
            match key.kind {
                AuthType::SimplePassword => {
                    let secret = &key.secret[..key.secret.len().min(16)];
                    out.push(key.kind.code());
                    out.push(3 + secret.len() as u8);
                    out.push(key.key_id);
                    out.extend_from_slice(secret);
                }
                AuthType::KeyedSha1 | AuthType::MeticulousKeyedSha1 => {
                    out.push(key.kind.code());
                    out.push(28);
                    out.push(key.key_id);
                    out.push(0);
                    out.extend_from_slice(&sequence.to_be_bytes());
                    let digest_at = out.len();
                    out.extend_from_slice(&padded_sha1_key(&key.secret));
                    out[3] = out.len() as u8;
                    let digest = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &out);
                    out[digest_at..digest_at + 20].copy_from_slice(digest.as_ref());
                }
            }
        }
        out[3] = out.len() as u8;
        out
    }
}

fn decode_auth(section: &[u8]) -> Result<AuthSection, DecodeError> {
    let malformed = |auth_type: u8, len: u8| DecodeError::AuthSection { auth_type, len };
    let auth_type = section[0];
    let len = section[1];
    if usize::from(len) != section.len() {
        return Err(malformed(auth_type, len));
    }
    match auth_type {
        // Simple password: type, len, key id, 1..=16 bytes.
        1 if (4..=19).contains(&len) => Ok(AuthSection {
            auth_type,
            key_id: section[2],
            sequence: 0,
        }),
        // Keyed MD5 / meticulous MD5 (24 bytes) and SHA1 (28 bytes): sequence at offset 4.
        2 | 3 if len == 24 => Ok(with_sequence(auth_type, section)),
        4 | 5 if len == 28 => Ok(with_sequence(auth_type, section)),
        _ => Err(malformed(auth_type, len)),
    }
}

fn with_sequence(auth_type: u8, section: &[u8]) -> AuthSection {
    AuthSection {
        auth_type,
        key_id: section[2],
        sequence: u32::from_be_bytes([section[4], section[5], section[6], section[7]]),
    }
}

/// §4.4: the key, padded with zeros to 20 bytes (longer keys are cut, config refuses them).
fn padded_sha1_key(secret: &[u8]) -> [u8; 20] {
    let mut padded = [0u8; 20];
    let len = secret.len().min(20);
    padded[..len].copy_from_slice(&secret[..len]);
    padded
}

/// Checks the authentication section of a received packet against `key` (§6.7.2, §6.7.4):
/// type and key ID must match and the password or digest must be right. The sequence
/// window is the session's business.
pub fn verify(bytes: &[u8], packet: &ControlPacket, key: &AuthKey) -> bool {
    let Some(auth) = &packet.auth else {
        return false;
    };
    if auth.auth_type != key.kind.code() || auth.key_id != key.key_id {
        return false;
    }
    let section = &bytes[MANDATORY_LEN..usize::from(bytes[3])];
    match key.kind {
        AuthType::SimplePassword => section[3..] == key.secret[..],
        AuthType::KeyedSha1 | AuthType::MeticulousKeyedSha1 => {
            let mut copy = bytes[..usize::from(bytes[3])].to_vec();
            let digest_at = MANDATORY_LEN + 8;
            let received: [u8; 20] = match copy[digest_at..digest_at + 20].try_into() {
                Ok(digest) => digest,
                Err(_) => return false,
            };
            copy[digest_at..digest_at + 20].copy_from_slice(&padded_sha1_key(&key.secret));
            let expected = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &copy);
            // Compare every byte (no early exit on the first difference).
            expected
                .as_ref()
                .iter()
                .zip(received)
                .fold(0u8, |diff, (a, b)| diff | (a ^ b))
                == 0
        }
    }
}
