//! The BGP message header and the five message types (RFC 4271 §4.1): framing, dispatch and
//! the small messages (KEEPALIVE §4.4, NOTIFICATION §4.5, ROUTE-REFRESH RFC 2918 §3).

use super::error::{DecodeError, EncodeError, Notification};
use super::nlri::Family;
use super::open::Open;
use super::update::Update;

/// Length of the message header: marker, length, type.
pub const HEADER_LEN: usize = 19;
/// Largest BGP message without the extended message capability (RFC 4271 §4.1).
pub const MAX_MESSAGE_LEN: usize = 4096;

const TYPE_OPEN: u8 = 1;
const TYPE_UPDATE: u8 = 2;
const TYPE_NOTIFICATION: u8 = 3;
const TYPE_KEEPALIVE: u8 = 4;
const TYPE_ROUTE_REFRESH: u8 = 5;

/// What was negotiated on the session and changes how messages are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CodecContext {
    /// Both sides sent the 4-octet AS capability: AS_PATH carries 4-byte AS numbers (RFC 6793).
    pub four_octet_as: bool,
}

/// A ROUTE-REFRESH request (RFC 2918 §3); `subtype` is the RFC 7313 field (0 = normal request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteRefresh {
    pub family: Family,
    pub subtype: u8,
}

/// A BGP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Open(Open),
    Update(Update),
    Notification(Notification),
    Keepalive,
    RouteRefresh(RouteRefresh),
}

impl Message {
    /// The message type name, for logs and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Open(_) => "OPEN",
            Message::Update(_) => "UPDATE",
            Message::Notification(_) => "NOTIFICATION",
            Message::Keepalive => "KEEPALIVE",
            Message::RouteRefresh(_) => "ROUTE-REFRESH",
        }
    }

    /// Appends the whole message (header included) to `out`.
    pub fn encode(&self, ctx: CodecContext, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        out.extend_from_slice(&[0xff; 16]);
        out.extend_from_slice(&[0, 0]); // length, patched below
        let message_type = match self {
            Message::Open(open) => {
                out.push(TYPE_OPEN);
                open.encode_body(out)?;
                TYPE_OPEN
            }
            Message::Update(update) => {
                out.push(TYPE_UPDATE);
                update.encode_body(ctx.four_octet_as, out)?;
                TYPE_UPDATE
            }
            Message::Notification(notification) => {
                out.push(TYPE_NOTIFICATION);
                out.push(notification.code);
                out.push(notification.subcode);
                out.extend_from_slice(&notification.data);
                TYPE_NOTIFICATION
            }
            Message::Keepalive => {
                out.push(TYPE_KEEPALIVE);
                TYPE_KEEPALIVE
            }
            Message::RouteRefresh(refresh) => {
                out.push(TYPE_ROUTE_REFRESH);
                out.extend_from_slice(&refresh.family.afi.to_be_bytes());
                out.push(refresh.subtype);
                out.push(refresh.family.safi);
                TYPE_ROUTE_REFRESH
            }
        };
        debug_assert!(message_type != 0);
        let len = out.len() - start;
        if len > MAX_MESSAGE_LEN {
            out.truncate(start);
            return Err(EncodeError::MessageTooLong { len });
        }
        // Fits: len <= 4096.
        let len_bytes = u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes();
        out[start + 16..start + 18].copy_from_slice(&len_bytes);
        Ok(())
    }

    /// The message as a new byte vector.
    pub fn to_bytes(&self, ctx: CodecContext) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        self.encode(ctx, &mut out)?;
        Ok(out)
    }

    /// Decodes exactly one complete message (header included).
    pub fn decode(bytes: &[u8], ctx: CodecContext) -> Result<Message, DecodeError> {
        let Some(len) = frame_length(bytes)? else {
            return Err(bad_length(
                bytes.len(),
                "message is shorter than its header says",
            ));
        };
        if len != bytes.len() {
            return Err(bad_length(
                len,
                "header length differs from the bytes given",
            ));
        }
        let body = &bytes[HEADER_LEN..];
        match bytes[18] {
            TYPE_OPEN => {
                if len < 29 {
                    return Err(bad_length(len, "OPEN is shorter than 29 bytes"));
                }
                Open::decode_body(body).map(Message::Open)
            }
            TYPE_UPDATE => {
                if len < 23 {
                    return Err(bad_length(len, "UPDATE is shorter than 23 bytes"));
                }
                Update::decode_body(body, ctx.four_octet_as).map(Message::Update)
            }
            TYPE_NOTIFICATION => {
                match body {
                    [code, subcode, data @ ..] => Ok(Message::Notification(
                        Notification::with_data(*code, *subcode, data.to_vec()),
                    )),
                    _ => Err(bad_length(len, "NOTIFICATION is shorter than 21 bytes")),
                }
            }
            TYPE_KEEPALIVE if len == HEADER_LEN => Ok(Message::Keepalive),
            TYPE_KEEPALIVE => Err(bad_length(len, "KEEPALIVE is not 19 bytes")),
            TYPE_ROUTE_REFRESH => match *body {
                [afi_hi, afi_lo, subtype, safi] => Ok(Message::RouteRefresh(RouteRefresh {
                    family: Family {
                        afi: u16::from_be_bytes([afi_hi, afi_lo]),
                        safi,
                    },
                    subtype,
                })),
                _ => Err(bad_length(len, "ROUTE-REFRESH is not 23 bytes")),
            },
            other => Err(DecodeError::notify(
                Notification::MESSAGE_HEADER_ERROR,
                3,
                vec![other],
                format!("message type {other} is unknown"),
            )),
        }
    }
}

fn bad_length(len: usize, why: &str) -> DecodeError {
    DecodeError::notify(
        Notification::MESSAGE_HEADER_ERROR,
        2,
        u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes(),
        format!("bad message length {len}: {why}"),
    )
}

/// Where the first message in a byte stream ends: `Ok(None)` if more bytes are needed, the
/// message length once the header is complete, or an error for a bad marker or length
/// (RFC 4271 §6.1).
pub fn frame_length(buf: &[u8]) -> Result<Option<usize>, DecodeError> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    if buf[..16].iter().any(|byte| *byte != 0xff) {
        return Err(DecodeError::notify(
            Notification::MESSAGE_HEADER_ERROR,
            1,
            Vec::new(),
            "message marker is not all ones".into(),
        ));
    }
    let len = usize::from(u16::from_be_bytes([buf[16], buf[17]]));
    if !(HEADER_LEN..=MAX_MESSAGE_LEN).contains(&len) {
        return Err(bad_length(len, "outside 19..=4096"));
    }
    Ok((buf.len() >= len).then_some(len))
}
