//! RFC 5881 §5 and §4 on the wire: a single-hop Control packet that arrives with a TTL other
//! than 255 is dropped (a router forged it from afar), one with 255 is taken; and what we
//! send leaves with TTL 255 from a source port in 49152–65535 to UDP 3784. The "router" here
//! is a plain UDP socket in the router namespace, so the TTL can be chosen.

mod bgp_support;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use announcer::bfd::packet::{ControlPacket, Diagnostic, State};
use announcer::bfd::session::Parameters;
use announcer::bfd::{BfdConfig, Manager, State as BfdState};
use bgp_support::*;

/// Runs `f` on a thread inside namespace `ns`.
fn in_ns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    let path = format!("/var/run/netns/{ns}");
    std::thread::scope(|scope| {
        scope
            .spawn(move || {
                let file = std::fs::File::open(&path).expect("open namespace");
                nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
                f()
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

fn down_from_router() -> Vec<u8> {
    ControlPacket {
        diagnostic: Diagnostic::NONE,
        state: State::Down,
        poll: false,
        final_: false,
        control_plane_independent: false,
        demand: false,
        multipoint: false,
        detect_mult: 3,
        my_discriminator: 4242,
        your_discriminator: 0,
        desired_min_tx: 1_000_000,
        required_min_rx: 300_000,
        required_min_echo_rx: 0,
        auth: None,
    }
    .encode(None)
}

#[test]
fn single_hop_takes_only_ttl_255_and_sends_with_ttl_255_from_an_ephemeral_port() {
    if !prerequisites(&[]) {
        return;
    }
    let topology = Topology::new();
    // The "router" listens on 3784 so it can see what we send.
    let router = in_ns(&topology.router_ns, || {
        UdpSocket::bind(format!("{ROUTER_V4}:3784")).expect("bind router")
    });
    router
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let speaker_bfd: SocketAddr = format!("{SPEAKER_V4}:3784").parse().expect("addr");
    let sender = |ttl: u32| {
        let socket = in_ns(&topology.router_ns, || {
            UdpSocket::bind(format!("{ROUTER_V4}:0")).expect("bind sender")
        });
        socket.set_ttl(ttl).expect("ttl");
        socket
    };
    let (ttl64, ttl255) = (sender(64), sender(255));
    nix::sys::socket::setsockopt(&router, nix::sys::socket::sockopt::Ipv4RecvTtl, &true)
        .expect("IP_RECVTTL");
    topology.in_speaker_ns(|| async {
        let manager = Manager::default();
        let config = BfdConfig {
            params: Parameters {
                desired_min_tx: Duration::from_millis(300),
                required_min_rx: Duration::from_millis(300),
                detect_mult: 3,
            },
            multihop: false,
            auth: None,
            key_file: None,
        };
        let mut handle = manager
            .start(ROUTER_V4.parse().expect("ip"), None, &config)
            .expect("BFD starts");

        // What we send: TTL 255, source port 49152-65535, our address.
        let listener = router.try_clone().expect("clone");
        let (bytes, from, ttl) = tokio::task::spawn_blocking(move || receive_with_ttl(&listener))
            .await
            .expect("receiver");
        let packet = ControlPacket::decode(&bytes).expect("a Control packet");
        assert_eq!(packet.state, State::Down);
        assert_eq!(ttl, Some(255));
        assert!(from.port() >= 49152, "source port {}", from.port());
        assert_eq!(from.ip().to_string(), SPEAKER_V4);

        // A Down packet with TTL 64 is dropped: we stay Down.
        ttl64
            .send_to(&down_from_router(), speaker_bfd)
            .expect("send");
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(handle.status.borrow().state, BfdState::Down);
        assert_eq!(handle.status.borrow().remote_discriminator, 0);
        // The same packet with TTL 255 moves us to Init (RFC 5880 §6.8.6).
        ttl255
            .send_to(&down_from_router(), speaker_bfd)
            .expect("send");
        tokio::time::timeout(
            Duration::from_secs(5),
            handle.status.wait_for(|s| s.state == BfdState::Init),
        )
        .await
        .expect("Init within 5 s")
        .expect("status");
        assert_eq!(handle.status.borrow().remote_discriminator, 4242);
    });
}

/// One datagram and the TTL it arrived with (IP_RECVTTL on the socket).
fn receive_with_ttl(socket: &UdpSocket) -> (Vec<u8>, SocketAddr, Option<i32>) {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrIn, recvmsg};
    use std::os::fd::AsRawFd;
    let mut buffer = [0u8; 128];
    let mut iov = [std::io::IoSliceMut::new(&mut buffer)];
    let mut control = nix::cmsg_space!(libc::c_int);
    let message = recvmsg::<SockaddrIn>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut control),
        MsgFlags::empty(),
    )
    .expect("a packet from the speaker");
    let ttl = message.cmsgs().expect("cmsgs").find_map(|c| match c {
        ControlMessageOwned::Ipv4Ttl(ttl) => Some(ttl),
        _ => None,
    });
    let from = message.address.expect("source");
    let len = message.bytes;
    let from = SocketAddr::from((from.ip(), from.port()));
    (buffer[..len].to_vec(), from, ttl)
}
