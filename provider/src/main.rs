//! `ferrolb-provider` entry point: parse flags, connect, serve health/metrics, run.
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use prometheus_client::registry::Registry;
use provider::{args::Args, controller, http, metrics::Metrics, telemetry};

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.validate().map_err(anyhow::Error::msg)?;
    provider::memory::configure();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.worker_threads)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    telemetry::init(args.log_format);
    let client = connect(&args).await?;
    let metrics = Arc::new(Metrics::default());
    let mut registry = Registry::default();
    metrics.register(&mut registry);
    let health = Arc::new(http::Health::default());
    let (bound, _server) = http::serve(args.metrics_addr, Arc::new(registry), health.clone())
        .await
        .with_context(|| format!("cannot listen on --metrics-addr {}", args.metrics_addr))?;
    tracing::info!(%bound, "serving /metrics, /healthz and /readyz");
    let mut ctx = controller::Context::from_args(client.clone(), &args, metrics, health);
    if let Some(cluster) = ctx.cluster.as_mut() {
        // The announcers' CA and the provider's client certificate (created and rotated in
        // Secrets, or read from files).
        let (tls_tx, tls_rx) = tokio::sync::watch::channel(None);
        cluster.tls = tls_rx;
        tokio::spawn(provider::certs::run(
            client.clone(),
            args.config_namespace.clone(),
            args.tls.clone(),
            tls_tx,
        ));
    }
    let identity = ctx.identity.clone();
    tokio::select! {
        () = controller::run(ctx, &args) => {}
        signal = shutdown_signal() => {
            signal.context("cannot listen for SIGINT/SIGTERM")?;
            tracing::info!("terminating");
        }
    }
    // The controller (and with it every writer) is dropped by now: hand the Lease over.
    if args.leader_elect {
        let settings = provider::lease::LeaseSettings {
            namespace: args.config_namespace.clone(),
            identity,
            duration: args.lease_duration,
            renew_deadline: args.renew_deadline,
            retry_period: args.retry_period,
        };
        provider::lease::release(client, &settings).await;
    }
    Ok(())
}

/// Resolves on SIGINT or SIGTERM (what the kubelet sends on Pod deletion).
async fn shutdown_signal() -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result,
        _ = term.recv() => Ok(()),
    }
}

/// A client from `--kubeconfig`, else the in-cluster configuration (or $KUBECONFIG).
async fn connect(args: &Args) -> anyhow::Result<kube::Client> {
    let config = match &args.kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("cannot read --kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(
                kubeconfig,
                &kube::config::KubeConfigOptions::default(),
            )
            .await
            .with_context(|| format!("invalid kubeconfig {}", path.display()))?
        }
        None => kube::Config::infer()
            .await
            .context("no in-cluster configuration and no kubeconfig")?,
    };
    kube::Client::try_from(config).context("cannot build the Kubernetes client")
}
