//! `test-apiserver`: runs the in-memory Kubernetes API server on
//! 127.0.0.1, prints its address and serves until killed.
#![forbid(unsafe_code)]

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use test_apiserver::{ServerOptions, TestApiServer};

/// An in-memory Kubernetes API server for tests (kube-rs and kubectl compatible).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// TCP port on 127.0.0.1 to listen on; 0 picks a free port.
    #[arg(long, env = "TEST_APISERVER_PORT", default_value_t = 0)]
    port: u16,
    /// Write a kubeconfig pointing at this server to FILE.
    #[arg(long, env = "TEST_APISERVER_KUBECONFIG_OUT", value_name = "FILE")]
    kubeconfig_out: Option<PathBuf>,
    /// Number of events kept for watch resumption (older resourceVersions get 410 Gone).
    #[arg(
        long,
        env = "TEST_APISERVER_EVENT_LOG_CAPACITY",
        default_value_t = 10_000
    )]
    event_log_capacity: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let server = TestApiServer::with_options(ServerOptions {
        event_log_capacity: args.event_log_capacity,
        ..ServerOptions::default()
    });
    let (address, task) = server
        .serve_http(args.port)
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{}", args.port))?;
    if let Some(path) = &args.kubeconfig_out {
        TestApiServer::write_kubeconfig(path, address)
            .with_context(|| format!("cannot write the kubeconfig to {}", path.display()))?;
    }
    println!("listening on http://{address}");
    task.await.context("the HTTP server task ended")?;
    Ok(())
}
