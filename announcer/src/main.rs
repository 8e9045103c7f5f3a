//! `ferrolb-announcer` entry point: parse flags, set up logging, run the server or `ctl`.

use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;

use announcer::args::{Args, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if args.server.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
    match args.command {
        Some(Command::Ctl(ctl)) => {
            // One line on stderr, as docs/announcer.md shows (`InvalidArgument: field: why`).
            if let Err(error) = announcer::ctl::run(ctl).await {
                eprintln!("{error}");
                std::process::exit(1);
            }
            Ok(())
        }
        None => {
            // Standalone BGP peers are validated before anything starts.
            let peers = announcer::bgp::args::standalone_peers(&args.server.bgp)?;
            let bgp_enabled = args.server.bgp.enabled();
            let restart = args.server.bgp.restart_options();
            let default_local_asn = args.server.bgp.bgp_local_asn;
            announcer::server::run_with(args.server, move |events, registry| {
                if !bgp_enabled {
                    return None;
                }
                let service =
                    announcer::bgp::backend::BgpService::new(Some(events), registry, &restart)
                        .with_default_local_asn(default_local_asn);
                let speaker = service.speaker().clone();
                tokio::spawn(async move {
                    for peer in peers {
                        let address = peer.address;
                        if let Err(e) = speaker.add_peer(peer).await {
                            tracing::error!(%address, "BGP peer: {e}");
                        }
                    }
                });
                Some(Arc::new(service))
            })
            .await
            .context("ferrolb-announcer")
        }
    }
}
