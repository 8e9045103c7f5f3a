//! Command-line arguments of `ferrolb-announcer`.

use clap::Parser;

/// ferrolb-announcer: makes load-balancer addresses reachable (ARP, NDP, BGP), driven over gRPC.
#[derive(Debug, Parser)]
#[command(name = "ferrolb-announcer", version, about, long_about = None)]
pub struct Args {}
