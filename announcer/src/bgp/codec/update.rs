//! UPDATE message (RFC 4271 §4.3) and the End-of-RIB marker (RFC 4724 §2), with the
//! revised error handling of RFC 7606: most attribute errors withdraw the routes of the UPDATE
//! ("treat-as-withdraw") instead of resetting the session.

use ipnet::IpNet;

use super::attributes::{self, MpUnreach, PathAttribute};
use super::error::{DecodeError, EncodeError, ErrorAction, Notification};
use super::nlri::{self, Family};

/// An UPDATE message. IPv4 unicast routes travel in `withdrawn` and `nlri`; other families
/// inside MP_REACH_NLRI / MP_UNREACH_NLRI attributes (RFC 4760).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Update {
    pub withdrawn: Vec<IpNet>,
    pub attributes: Vec<PathAttribute>,
    pub nlri: Vec<IpNet>,
}

impl Update {
    /// The End-of-RIB marker for `family` (RFC 4724 §2): an empty UPDATE for IPv4 unicast, an
    /// UPDATE holding only an empty MP_UNREACH_NLRI for the others.
    pub fn end_of_rib(family: Family) -> Update {
        if family == Family::IPV4_UNICAST {
            return Update::default();
        }
        Update {
            attributes: vec![PathAttribute::MpUnreachNlri(MpUnreach {
                family,
                withdrawn: Vec::new(),
            })],
            ..Update::default()
        }
    }

    /// The family this UPDATE marks End-of-RIB for, if it is such a marker.
    pub fn end_of_rib_family(&self) -> Option<Family> {
        if !self.withdrawn.is_empty() || !self.nlri.is_empty() {
            return None;
        }
        match self.attributes.as_slice() {
            [] => Some(Family::IPV4_UNICAST),
            [PathAttribute::MpUnreachNlri(unreach)] if unreach.withdrawn.is_empty() => {
                Some(unreach.family)
            }
            _ => None,
        }
    }

    /// Bytes one prefix takes in an NLRI or withdrawn field (for packing UPDATEs).
    pub fn prefix_wire_len(prefix: &IpNet) -> usize {
        nlri::encoded_len(prefix)
    }

    pub(super) fn encode_body(
        &self,
        four_octet: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        let mut withdrawn = Vec::new();
        for prefix in &self.withdrawn {
            nlri::encode_prefix(prefix, &mut withdrawn);
        }
        let mut attrs = Vec::new();
        for attribute in &self.attributes {
            attribute.encode(four_octet, &mut attrs)?;
        }
        let too_long = |len: usize| EncodeError::MessageTooLong { len: len + 19 };
        out.extend_from_slice(
            &u16::try_from(withdrawn.len())
                .map_err(|_| too_long(withdrawn.len()))?
                .to_be_bytes(),
        );
        out.extend_from_slice(&withdrawn);
        out.extend_from_slice(
            &u16::try_from(attrs.len())
                .map_err(|_| too_long(attrs.len()))?
                .to_be_bytes(),
        );
        out.extend_from_slice(&attrs);
        for prefix in &self.nlri {
            nlri::encode_prefix(prefix, out);
        }
        Ok(())
    }

    /// Decodes an UPDATE body. When several errors are present the most severe wins
    /// (RFC 7606 §3): a session reset beats treat-as-withdraw.
    pub(super) fn decode_body(body: &[u8], four_octet: bool) -> Result<Update, DecodeError> {
        let malformed_list = |reason: String| {
            DecodeError::notify(Notification::UPDATE_MESSAGE_ERROR, 1, Vec::new(), reason)
        };
        let [wd_hi, wd_lo, rest @ ..] = body else {
            return Err(malformed_list(format!(
                "UPDATE body of {} bytes is too short",
                body.len()
            )));
        };
        let withdrawn_len = usize::from(u16::from_be_bytes([*wd_hi, *wd_lo]));
        if rest.len() < withdrawn_len + 2 {
            return Err(malformed_list(format!(
                "UPDATE withdrawn routes length {withdrawn_len} overruns the message"
            )));
        }
        let (withdrawn_bytes, rest) = rest.split_at(withdrawn_len);
        let withdrawn =
            nlri::decode_prefixes(withdrawn_bytes, Family::AFI_IPV4).map_err(|detail| {
                DecodeError::notify(
                    Notification::UPDATE_MESSAGE_ERROR,
                    10,
                    Vec::new(),
                    format!("UPDATE withdrawn routes: {detail}"),
                )
            })?;
        let attrs_len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let rest = &rest[2..];
        if rest.len() < attrs_len {
            return Err(malformed_list(format!(
                "UPDATE total path attribute length {attrs_len} overruns the message ({} bytes left)",
                rest.len()
            )));
        }
        let (mut attr_bytes, nlri_bytes) = rest.split_at(attrs_len);
        let nlri = nlri::decode_prefixes(nlri_bytes, Family::AFI_IPV4).map_err(|detail| {
            DecodeError::notify(
                Notification::UPDATE_MESSAGE_ERROR,
                10,
                Vec::new(),
                format!("UPDATE NLRI: {detail}"),
            )
        })?;

        let mut withdraw_reason: Option<String> = None;
        let mut attributes: Vec<PathAttribute> = Vec::new();
        let mut seen = [false; 256];
        while !attr_bytes.is_empty() {
            let header_len = match attr_bytes {
                [flags, _, ..] if flags & attributes::FLAG_EXTENDED_LENGTH != 0 => 4,
                _ => 3,
            };
            if attr_bytes.len() < header_len {
                // RFC 7606 §4: attribute fields that do not fit the total length.
                withdraw_reason = Some("UPDATE path attribute header truncated".into());
                break;
            }
            let (flags, type_code) = (attr_bytes[0], attr_bytes[1]);
            let value_len = if header_len == 4 {
                usize::from(u16::from_be_bytes([attr_bytes[2], attr_bytes[3]]))
            } else {
                usize::from(attr_bytes[2])
            };
            if attr_bytes.len() < header_len + value_len {
                withdraw_reason = Some(format!(
                    "UPDATE attribute {type_code} length {value_len} overruns the attribute list"
                ));
                break;
            }
            let (raw, remaining) = attr_bytes.split_at(header_len + value_len);
            attr_bytes = remaining;
            let value = &raw[header_len..];
            if seen[usize::from(type_code)] {
                // RFC 7606 §3g: repeated MP_(UN)REACH resets the session; other repeats are
                // discarded.
                if type_code == attributes::MP_REACH_NLRI
                    || type_code == attributes::MP_UNREACH_NLRI
                {
                    return Err(malformed_list(format!(
                        "UPDATE attribute {type_code} appears twice"
                    )));
                }
                continue;
            }
            seen[usize::from(type_code)] = true;
            match PathAttribute::decode(flags, type_code, value, raw, four_octet) {
                Ok(Some(attribute)) => attributes.push(attribute),
                Ok(None) => {}
                Err(DecodeError {
                    action: ErrorAction::TreatAsWithdraw,
                    reason,
                }) => {
                    withdraw_reason.get_or_insert(reason);
                }
                Err(fatal) => return Err(fatal),
            }
        }
        if let Some(reason) = withdraw_reason {
            return Err(DecodeError::treat_as_withdraw(reason));
        }

        let update = Update {
            withdrawn,
            attributes,
            nlri,
        };
        update.check_mandatory()?;
        Ok(update)
    }

    /// RFC 4271 §6.3 / RFC 7606 §3d: routes need ORIGIN and AS_PATH, IPv4 NLRI also NEXT_HOP.
    fn check_mandatory(&self) -> Result<(), DecodeError> {
        let has_mp_routes = self
            .attributes
            .iter()
            .any(|a| matches!(a, PathAttribute::MpReachNlri(reach) if !reach.nlri.is_empty()));
        if self.nlri.is_empty() && !has_mp_routes {
            return Ok(());
        }
        let has = |code: u8| self.attributes.iter().any(|a| a.type_code() == code);
        let mut missing = Vec::new();
        if !has(1) {
            missing.push("ORIGIN");
        }
        if !has(2) {
            missing.push("AS_PATH");
        }
        if !self.nlri.is_empty() && !has(3) {
            missing.push("NEXT_HOP");
        }
        if missing.is_empty() {
            return Ok(());
        }
        Err(DecodeError::treat_as_withdraw(format!(
            "UPDATE with routes lacks well-known attribute(s) {}",
            missing.join(", ")
        )))
    }
}
