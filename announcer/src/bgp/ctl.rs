//! `ferrolb-announcer ctl peers list|add|delete`: BGP peers through the announcer API. Prints
//! JSON like the other `ctl` commands. Also the per-announcement BGP attributes of
//! `ctl announce` (flags) and `ctl sync` (keys of a file entry); the server validates them and
//! names the request's field in its error.

use clap::{Args, Subcommand};
use proto::announcer::v1::{self as pb, announcer_client::AnnouncerClient};
use serde_json::{Value, json};
use tonic::transport::Channel;

use super::args::PeerSpec;

/// `ctl peers` subcommands.
#[derive(Debug, Subcommand)]
pub enum PeersCommand {
    /// List the configured peers and their sessions.
    List,
    /// Add or replace a peer (keyed by --address).
    Add(Box<PeerSpec>),
    /// Delete a peer: its session ends with a Cease NOTIFICATION.
    Delete {
        /// The peer's IP address.
        address: String,
    },
}

/// BGP attributes of one announcement (mode bgp): flags of `ctl announce`, keys of a
/// `ctl sync` file entry (snake_case, as in a `--bgp-config` peer entry). Fields left out take
/// the peer's.
#[derive(Debug, Clone, Default, Args)]
pub struct AnnouncementAttributes {
    /// Standard community ASN:VALUE sent with this route (repeatable; replaces the peer's).
    #[arg(long = "community")]
    pub communities: Vec<String>,
    /// Large community GLOBAL:LOCAL1:LOCAL2 sent with this route (repeatable; replaces the
    /// peer's).
    #[arg(long = "large-community")]
    pub large_communities: Vec<String>,
    /// LOCAL_PREF of this route towards iBGP peers.
    #[arg(long)]
    pub local_pref: Option<u32>,
    /// MULTI_EXIT_DISC of this route.
    #[arg(long)]
    pub med: Option<u32>,
}

impl AnnouncementAttributes {
    /// The gRPC `Announcement.bgp`; `None` when nothing is set.
    pub fn to_proto(&self) -> Option<pb::BgpAttributes> {
        let empty = self.communities.is_empty()
            && self.large_communities.is_empty()
            && self.local_pref.is_none()
            && self.med.is_none();
        (!empty).then(|| pb::BgpAttributes {
            communities: self.communities.clone(),
            large_communities: self.large_communities.clone(),
            local_pref: self.local_pref,
            med: self.med,
        })
    }
}

/// JSON form of an announcement's BGP attributes (`null` when none are set).
pub fn attributes_json(attributes: Option<&pb::BgpAttributes>) -> Value {
    match attributes {
        None => Value::Null,
        Some(a) => json!({
            "communities": a.communities,
            "large_communities": a.large_communities,
            "local_pref": a.local_pref,
            "med": a.med,
        }),
    }
}

fn state_name(value: i32) -> &'static str {
    match pb::SessionState::try_from(value) {
        Ok(pb::SessionState::Idle) => "idle",
        Ok(pb::SessionState::Connect) => "connect",
        Ok(pb::SessionState::Active) => "active",
        Ok(pb::SessionState::OpenSent) => "open-sent",
        Ok(pb::SessionState::OpenConfirm) => "open-confirm",
        Ok(pb::SessionState::Established) => "established",
        _ => "unspecified",
    }
}

/// JSON form of a peer status.
pub fn peer_json(status: &pb::PeerStatus) -> Value {
    let peer = status.peer.clone().unwrap_or_default();
    json!({
        "address": peer.address,
        "port": peer.port,
        "peer_asn": peer.peer_asn,
        "local_asn": peer.local_asn,
        "passive": peer.passive,
        "families": peer.families,
        "password_set": peer.password_set,
        "managed": status.managed,
        "state": state_name(status.state),
        "uptime_seconds": status.uptime_seconds,
        "last_error": status.last_error,
        "prefixes_sent": status.prefixes_sent,
        "updates_sent": status.updates_sent,
        "capabilities": status.capabilities,
        "bfd": status.bfd.as_ref().map(|bfd| json!({
            "state": bfd.state,
            "diagnostic": bfd.diagnostic,
            "local_discriminator": bfd.local_discriminator,
            "remote_discriminator": bfd.remote_discriminator,
            "detection_time_ms": bfd.detection_time_ms,
            "up_count": bfd.up_count,
        })),
    })
}

/// Runs one `ctl peers` command.
pub async fn run(
    client: &mut AnnouncerClient<Channel>,
    command: PeersCommand,
) -> Result<(), tonic::Status> {
    match command {
        PeersCommand::List => {
            let peers = client
                .list_peers(pb::ListPeersRequest {})
                .await?
                .into_inner()
                .peers;
            println!("{}", Value::Array(peers.iter().map(peer_json).collect()));
        }
        PeersCommand::Add(spec) => {
            let request = pb::AddPeerRequest {
                peer: Some(spec.to_proto()),
            };
            let status = client
                .add_peer(request)
                .await?
                .into_inner()
                .status
                .unwrap_or_default();
            println!("{}", peer_json(&status));
        }
        PeersCommand::Delete { address } => {
            let deleted = client
                .delete_peer(pb::DeletePeerRequest { address })
                .await?
                .into_inner()
                .deleted;
            println!("{}", json!({ "deleted": deleted }));
        }
    }
    Ok(())
}
