//! The TCP side of a BGP session: opening the connection (source address, IP TTL and the
//! RFC 2385 MD5 key set before the SYN), the IP TTL of accepted connections, and splitting
//! the byte stream into messages (RFC 4271 §4.1 header length).
//!
//! ```text
//!   PeerConfig ──connect()──▶ TcpStream ──FramedRead<Framer>──▶ Result<Message, DecodeError>
//! ```

use std::io;
use std::net::{IpAddr, SocketAddr};

use bytes::BytesMut;
use tokio::net::{TcpSocket, TcpStream};
use tokio_util::codec::Decoder;

use super::codec::{CodecContext, DecodeError, Message, frame_length};
use super::config::PeerConfig;

/// Splits a TCP byte stream into BGP messages; `ctx` follows what was negotiated.
pub(super) struct Framer {
    pub(super) ctx: CodecContext,
}

impl Decoder for Framer {
    type Item = Result<Message, DecodeError>;
    type Error = io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, io::Error> {
        match frame_length(buf) {
            Ok(None) => Ok(None),
            Ok(Some(len)) => {
                let frame = buf.split_to(len);
                Ok(Some(Message::decode(&frame, self.ctx)))
            }
            Err(error) => {
                // The stream cannot be resynchronised; the session closes after this.
                buf.clear();
                Ok(Some(Err(error)))
            }
        }
    }
}

/// A clear reason for a failed connection; a silent drop is what a TCP MD5 mismatch looks like.
pub(super) fn connect_error(config: &PeerConfig, error: &io::Error) -> String {
    let peer = SocketAddr::new(config.address, config.port);
    if error.kind() == io::ErrorKind::TimedOut {
        let md5 = if config.password.is_some() {
            "with"
        } else {
            "without"
        };
        format!(
            "connect to {peer}: no answer within {}s (connection attempted {md5} a TCP MD5 \
             password; a router requiring a different one drops the segments silently)",
            config.connect_retry.as_secs()
        )
    } else {
        format!("connect to {peer}: {error}")
    }
}

/// Sets the IP TTL (IPv6: unicast hop limit) of a session socket, connected or not.
pub(super) fn set_ttl(socket: &impl std::os::fd::AsFd, ttl: u32, peer: IpAddr) -> io::Result<()> {
    let socket = socket2::SockRef::from(socket);
    match peer {
        IpAddr::V4(_) => socket.set_ttl_v4(ttl),
        IpAddr::V6(_) => socket.set_unicast_hops_v6(ttl),
    }
}

/// Opens the TCP connection of an active peer: source address, TTL and MD5 key are set
/// before the SYN; gives up after the ConnectRetry time.
pub(super) async fn connect(config: PeerConfig) -> io::Result<TcpStream> {
    let peer = SocketAddr::new(config.address, config.port);
    let socket = if peer.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(source) = config.source_address {
        socket.bind(SocketAddr::new(source, 0))?;
    }
    set_ttl(&socket, config.ttl(), config.address)?;
    if let Some(password) = &config.password {
        crate::sys::tcp_md5::set_md5_key(&socket, config.address, password)?;
    }
    match tokio::time::timeout(config.connect_retry, socket.connect(peer)).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "timed out")),
    }
}
