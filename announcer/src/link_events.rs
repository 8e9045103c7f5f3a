//! Link change notifications from the kernel (rtnetlink group `RTMGRP_LINK`).
//!
//! ```text
//!   kernel ──RTM_NEWLINK / RTM_DELLINK──▶ watch() ──notify──▶ server's tick loop ──▶ engine.tick()
//! ```
//!
//! A link that comes up is re-announced at once rather than at the next
//! `--link-poll-interval` tick. The poll stays as the fallback (and for retries): if the
//! subscription fails, the announcer logs it and keeps polling.

use std::{io, sync::Arc};

use futures::StreamExt;
use rtnetlink::{
    constants::RTMGRP_LINK,
    packet_core::NetlinkPayload,
    packet_route::RouteNetlinkMessage,
    sys::{AsyncSocket, SocketAddr},
};
use tokio::sync::Notify;

/// True for the messages that say a link appeared, changed (up/down) or went away.
pub fn is_link_change(payload: &NetlinkPayload<RouteNetlinkMessage>) -> bool {
    matches!(
        payload,
        NetlinkPayload::InnerMessage(
            RouteNetlinkMessage::NewLink(_) | RouteNetlinkMessage::DelLink(_)
        )
    )
}

/// Wakes `wake` on every link change until the subscription ends; returns why it ended.
pub async fn watch(wake: Arc<Notify>) -> io::Result<()> {
    let (mut connection, handle, mut messages) = rtnetlink::new_connection()?;
    connection
        .socket_mut()
        .socket_mut()
        .bind(&SocketAddr::new(0, RTMGRP_LINK))?;
    let running = tokio::spawn(connection);
    while let Some((message, _)) = messages.next().await {
        if is_link_change(&message.payload) {
            wake.notify_one();
        }
    }
    // The connection ends when its handle is gone; keep it until the stream ends.
    drop(handle);
    running.abort();
    Err(io::Error::other(
        "the kernel closed the link notification socket",
    ))
}

#[cfg(test)]
mod tests {
    use rtnetlink::packet_route::{address::AddressMessage, link::LinkMessage};

    use super::*;

    #[test]
    fn only_link_messages_wake_the_tick() {
        let new =
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(LinkMessage::default()));
        let gone =
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(LinkMessage::default()));
        let address = NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(
            AddressMessage::default(),
        ));
        assert!(is_link_change(&new));
        assert!(is_link_change(&gone));
        assert!(!is_link_change(&address));
        assert!(!is_link_change(&NetlinkPayload::Noop));
    }
}
