//! The only place in the announcer where `unsafe` is allowed: thin wrappers over system calls
//! that no safe crate offers (packet-socket binding and multicast membership, TCP MD5).
//! Each submodule exposes a safe API and documents why each `unsafe` block is sound.

pub mod memory;
pub mod packet;
pub mod tcp_md5;
