//! `ferrolb-announcer` entry point: parse flags, set up logging, run the server or `ctl`.

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
        Some(Command::Ctl(ctl)) => announcer::ctl::run(ctl).await.context("ctl"),
        None => announcer::server::run(args.server)
            .await
            .context("ferrolb-announcer"),
    }
}
