//! Command-line arguments of `ferrolb-provider`.

use clap::Parser;

/// ferrolb-provider: allocates addresses to Services of type LoadBalancer from
/// kube-vip-cloud-provider compatible address pools.
#[derive(Debug, Parser)]
#[command(name = "ferrolb-provider", version, about, long_about = None)]
pub struct Args {}
