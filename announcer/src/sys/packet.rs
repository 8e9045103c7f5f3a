//! A Linux `AF_PACKET` socket bound to one interface, for the layer-2 responder.
//!
//! socket2 creates the socket and attaches the classic BPF filter safely; what it cannot do
//! safely is build a `sockaddr_ll` (to bind to one interface and to learn a frame's packet
//! type) and pass a `packet_mreq` (to join a link-layer multicast group). Those three calls
//! live here, each behind a safe method.

use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use socket2::{Domain, Protocol, SockFilter, Socket, Type};

/// `ETH_P_ALL`: receive every protocol; the BPF filter narrows it down to ARP and NDP.
const ETH_P_ALL: u16 = 0x0003;

/// The kernel's classification of a received frame (`sll_pkttype`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketType {
    /// Addressed to this host's MAC.
    Host,
    /// Sent to the broadcast address.
    Broadcast,
    /// Sent to a multicast group.
    Multicast,
    /// Addressed to another host (promiscuous mode or a bridge).
    OtherHost,
    /// Sent by this host (seen because the socket taps the interface).
    Outgoing,
}

impl PacketType {
    fn from_raw(raw: u8) -> Self {
        match raw {
            libc::PACKET_HOST => Self::Host,
            libc::PACKET_BROADCAST => Self::Broadcast,
            libc::PACKET_MULTICAST => Self::Multicast,
            libc::PACKET_OUTGOING => Self::Outgoing,
            _ => Self::OtherHost,
        }
    }
}

/// Classic BPF program: accept ARP frames and IPv6 frames whose next header is ICMPv6 with
/// type 135 (Neighbor Solicitation) or 136 (Neighbor Advertisement); drop the rest in the
/// kernel so a busy host does not wake the responder for every frame. Offsets are those of an
/// untagged Ethernet II frame: ethertype at 12, IPv6 next header at 14+6, ICMPv6 type at 14+40.
fn arp_ndp_filter() -> [SockFilter; 10] {
    const LDH_ABS: u16 = 0x28; // BPF_LD | BPF_H | BPF_ABS
    const LDB_ABS: u16 = 0x30; // BPF_LD | BPF_B | BPF_ABS
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    // Jump offsets count from the next instruction: accept is at 8, drop at 9.
    [
        SockFilter::new(LDH_ABS, 0, 0, 12),
        SockFilter::new(JEQ_K, 6, 0, 0x0806), // ARP -> accept
        SockFilter::new(JEQ_K, 0, 6, 0x86dd), // not IPv6 -> drop
        SockFilter::new(LDB_ABS, 0, 0, 20),
        SockFilter::new(JEQ_K, 0, 4, 58), // not ICMPv6 -> drop
        SockFilter::new(LDB_ABS, 0, 0, 54),
        SockFilter::new(JEQ_K, 1, 0, 135), // NS -> accept
        SockFilter::new(JEQ_K, 0, 1, 136), // NA -> accept, else drop
        SockFilter::new(RET_K, 0, 0, 0x0004_0000),
        SockFilter::new(RET_K, 0, 0, 0),
    ]
}

/// A non-blocking packet socket bound to one interface, receiving only ARP and NDP frames.
#[derive(Debug)]
pub struct PacketSocket {
    socket: Socket,
    ifindex: u32,
}

impl PacketSocket {
    /// Opens a raw packet socket on interface `ifindex`. Needs `CAP_NET_RAW`.
    pub fn open(ifindex: u32) -> io::Result<Self> {
        let protocol = Protocol::from(i32::from(ETH_P_ALL.to_be()));
        let socket = Socket::new(Domain::PACKET, Type::RAW, Some(protocol))?;
        socket.attach_filter(&arp_ndp_filter())?;
        socket.set_nonblocking(true)?;
        let this = Self { socket, ifindex };
        this.set_ignore_outgoing();
        this.bind()?;
        Ok(this)
    }

    /// Opens the socket in blocking mode: [`PacketSocket::recv_wait`] waits up to `timeout`
    /// for a frame, so a reader thread can notice that it should stop.
    pub fn open_blocking(ifindex: u32, timeout: std::time::Duration) -> io::Result<Self> {
        let this = Self::open(ifindex)?;
        this.socket.set_nonblocking(false)?;
        this.socket.set_read_timeout(Some(timeout))?;
        Ok(this)
    }

    /// Opens the socket and registers it with the tokio reactor (read readiness).
    pub fn open_async(ifindex: u32) -> io::Result<tokio::io::unix::AsyncFd<Self>> {
        let socket = Self::open(ifindex)?;
        // SAFETY: `PacketSocket` owns its fd (a `socket2::Socket`), never replaces it and
        // returns the same fd from every `as_raw_fd` call, so the fd stays valid and
        // unchanged for as long as the `AsyncFd` holds the `PacketSocket`.
        unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(socket, tokio::io::Interest::READABLE)
        }
        .map_err(|e| io::Error::other(e.to_string()))
    }

    fn bind(&self) -> io::Result<()> {
        // SAFETY: sockaddr_ll is plain old data, so all-zero is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = ETH_P_ALL.to_be();
        addr.sll_ifindex = i32::try_from(self.ifindex).map_err(io::Error::other)?;
        // SAFETY: the pointer and length describe `addr`, a valid sockaddr_ll that outlives
        // the call; the fd is owned by `self.socket`.
        let rc = unsafe {
            libc::bind(
                self.socket.as_raw_fd(),
                (&raw const addr).cast::<libc::sockaddr>(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// Asks the kernel not to loop our own transmissions back (Linux >= 4.20). Best effort:
    /// [`PacketSocket::recv`] also reports [`PacketType::Outgoing`] so callers can skip them.
    fn set_ignore_outgoing(&self) {
        let one: libc::c_int = 1;
        // SAFETY: the option value is a c_int that outlives the call; the fd is ours.
        let _ = unsafe {
            libc::setsockopt(
                self.socket.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_IGNORE_OUTGOING,
                (&raw const one).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
    }

    /// Receives one frame into `buf`; returns its length and the kernel's packet type.
    /// Returns `WouldBlock` when nothing is queued.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, PacketType)> {
        self.recv_with_flags(buf, libc::MSG_DONTWAIT)
    }

    /// Like [`PacketSocket::recv`], but on a socket from [`PacketSocket::open_blocking`] waits
    /// for a frame (`WouldBlock` after the read timeout).
    pub fn recv_wait(&self, buf: &mut [u8]) -> io::Result<(usize, PacketType)> {
        self.recv_with_flags(buf, 0)
    }

    fn recv_with_flags(
        &self,
        buf: &mut [u8],
        flags: libc::c_int,
    ) -> io::Result<(usize, PacketType)> {
        // SAFETY: sockaddr_ll is plain old data, so all-zero is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { zeroed() };
        let mut len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: buf is valid for buf.len() writable bytes; addr/len describe a valid,
        // large-enough sockaddr_ll; all outlive the call.
        let n = unsafe {
            libc::recvfrom(
                self.socket.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                flags,
                (&raw mut addr).cast::<libc::sockaddr>(),
                &raw mut len,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = usize::try_from(n).map_err(io::Error::other)?;
        Ok((n, PacketType::from_raw(addr.sll_pkttype)))
    }

    /// Sends one complete Ethernet frame out of the bound interface.
    pub fn send(&self, frame: &[u8]) -> io::Result<usize> {
        self.socket.send(frame)
    }

    /// Joins (or leaves) the link-layer multicast group `mac` on the bound interface, so a NIC
    /// that filters multicast delivers frames sent to it (`PACKET_MR_MULTICAST`). The kernel
    /// counts joins per socket, so each join must be matched by one leave.
    pub fn set_multicast_membership(&self, mac: [u8; 6], join: bool) -> io::Result<()> {
        // SAFETY: packet_mreq is plain old data, so all-zero is a valid value.
        let mut mreq: libc::packet_mreq = unsafe { zeroed() };
        mreq.mr_ifindex = i32::try_from(self.ifindex).map_err(io::Error::other)?;
        mreq.mr_type = libc::PACKET_MR_MULTICAST as u16;
        mreq.mr_alen = 6;
        mreq.mr_address[..6].copy_from_slice(&mac);
        let option = if join {
            libc::PACKET_ADD_MEMBERSHIP
        } else {
            libc::PACKET_DROP_MEMBERSHIP
        };
        // SAFETY: the option value is a packet_mreq that outlives the call; the fd is ours.
        let rc = unsafe {
            libc::setsockopt(
                self.socket.as_raw_fd(),
                libc::SOL_PACKET,
                option,
                (&raw const mreq).cast(),
                size_of::<libc::packet_mreq>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

impl AsRawFd for PacketSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

impl AsFd for PacketSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}
