//! Wiring of the server: builds the engine and its parts, starts the gRPC listeners, the
//! metrics server and the link poll, and on SIGTERM/SIGINT withdraws everything before
//! returning.

use std::sync::Arc;

use prometheus_client::registry::Registry;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::args::ServerArgs;
use crate::backend::{BgpBackend, EventSender};
use crate::engine::Engine;
use crate::failover::{Failover, FailoverMetrics, Settings};
use crate::grpc::{self, AnnouncerService, ServeError, TlsFiles};
use crate::l2::burst::GarpConfig;
use crate::l2::socket::L2Runtime;
use crate::link_events;
use crate::metrics::{self, Metrics};
use crate::safety::Policy;
use crate::tls::ReloadingConfig;
use crate::vip::VipManager;

/// A failure that stops the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error("--metrics-listen {0:?} is not an <ip>:<port> address")]
    MetricsAddress(String),
    // `error`, not `source`: the message already carries it, anyhow would print it twice.
    #[error("metrics server: binding --metrics-listen {address}: {error}")]
    MetricsBind {
        address: std::net::SocketAddr,
        error: std::io::Error,
    },
    #[error("metrics server on {address}: {error}")]
    Metrics {
        address: std::net::SocketAddr,
        error: std::io::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        source: std::io::Error,
    },
}

/// Runs the announcer; `make_backend` may build a BGP speaker that emits events through the
/// given sender.
pub async fn run_with(
    args: ServerArgs,
    make_backend: impl FnOnce(EventSender, &mut Registry) -> Option<Arc<dyn BgpBackend>>,
) -> Result<(), ServerError> {
    let tls_files = match (&args.tls_cert, &args.tls_key, &args.client_ca) {
        (Some(cert), Some(key), Some(client_ca)) => Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: client_ca.clone(),
        }),
        _ => None,
    };
    for listen in &args.listen {
        grpc::check_listener(listen, tls_files.is_some(), args.insecure)?;
    }
    let tls = match &tls_files {
        Some(files) => {
            let config = Arc::new(ReloadingConfig::load(files).map_err(ServeError::from)?);
            // The kubelet rewrites the mounted Secret on rotation; follow it.
            tokio::spawn(Arc::clone(&config).watch(args.tls_reload_interval));
            Some(config)
        }
        None => None,
    };

    let mut registry = Registry::default();
    let metrics = Metrics::new(&mut registry);
    let (events, _) = tokio::sync::broadcast::channel(1024);
    let backend = make_backend(events.clone(), &mut registry);
    let peer_events = events.subscribe();
    let garp = GarpConfig {
        count: args.garp_count,
        interval: args.garp_interval,
    };
    let l2 = L2Runtime::new(metrics.clone(), events.clone(), garp);
    let vip = VipManager::new(args.vip_lifetime).map_err(|source| ServerError::Io {
        what: "netlink",
        source,
    })?;
    let policy = Policy {
        deny: args.deny_prefixes.clone(),
        allow: args.allow_prefixes.clone(),
    };
    let mut engine = Engine::new(l2, vip, backend, events, metrics, policy);
    let failover = (args.heartbeat_port != 0).then(|| {
        Arc::new(Failover::new(
            Settings {
                interval: args.heartbeat_interval,
                multiplier: args.heartbeat_multiplier,
                preempt: args.failover_preempt,
            },
            args.heartbeat_port,
            FailoverMetrics::register(&mut registry),
        ))
    });
    if let Some(failover) = &failover {
        engine = engine.with_failover(Arc::clone(failover));
    }
    let engine = Arc::new(engine);
    let failover_failed = {
        let engine = Arc::clone(&engine);
        async move {
            match failover {
                Some(failover) => match failover.run(engine).await {
                    Err(source) => ServerError::Io {
                        what: "failover heartbeats (--heartbeat-port)",
                        source,
                    },
                    Ok(()) => std::future::pending().await,
                },
                None => std::future::pending().await,
            }
        }
    };

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    // Bound before anything is served: a port already taken stops the process at once with
    // the address named, rather than a server running without its metrics.
    let metrics_server = if args.metrics_listen.is_empty() {
        None
    } else {
        let address: std::net::SocketAddr = args
            .metrics_listen
            .parse()
            .map_err(|_| ServerError::MetricsAddress(args.metrics_listen.clone()))?;
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|error| ServerError::MetricsBind { address, error })?;
        tracing::info!(%address, "metrics listening");
        let registry = Arc::new(registry);
        let shutdown = stopped(stop_rx.clone());
        Some(tokio::spawn(async move {
            metrics::serve(listener, registry, shutdown)
                .await
                .map_err(|error| ServerError::Metrics { address, error })
        }))
    };
    let metrics_failed = async move {
        match metrics_server {
            Some(task) => match task.await {
                Ok(Err(e)) => e,
                // Ended without error (only at shutdown) or panicked: nothing to report.
                _ => std::future::pending().await,
            },
            None => std::future::pending().await,
        }
    };
    let mut servers = tokio::task::JoinSet::new();
    for listen in args.listen.clone() {
        let service = AnnouncerService::new(Arc::clone(&engine));
        let tls = if matches!(listen, crate::args::Listen::Tcp(_)) {
            tls.clone()
        } else {
            None
        };
        let shutdown = stopped(stop_rx.clone());
        tracing::info!(?listen, tls = tls.is_some(), "gRPC listening");
        servers.spawn(grpc::serve(listen, tls, service, shutdown));
    }
    // Interfaces are re-read on every kernel link notification, and every poll interval
    // (retries, and the fallback when notifications are unavailable).
    let link_changed = Arc::new(tokio::sync::Notify::new());
    let watcher_wake = Arc::clone(&link_changed);
    let link_watch = tokio::spawn(async move {
        if let Err(error) = link_events::watch(watcher_wake).await {
            tracing::warn!("link notifications unavailable ({error}); polling only");
        }
    });
    let poll_engine = Arc::clone(&engine);
    let poll_interval = args.link_poll_interval;
    let poll = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(poll_interval);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                () = link_changed.notified() => {}
            }
            poll_engine.tick().await;
        }
    });

    let peers_watch = tokio::spawn(follow_sessions(peer_events, Arc::clone(&engine)));

    let mut term = signal(SignalKind::terminate()).map_err(|source| ServerError::Io {
        what: "SIGTERM handler",
        source,
    })?;
    let mut int = signal(SignalKind::interrupt()).map_err(|source| ServerError::Io {
        what: "SIGINT handler",
        source,
    })?;
    let outcome = tokio::select! {
        _ = term.recv() => { tracing::info!("SIGTERM: withdrawing everything"); Ok(()) }
        _ = int.recv() => { tracing::info!("SIGINT: withdrawing everything"); Ok(()) }
        Some(result) = servers.join_next() => match result {
            Ok(Err(e)) => Err(ServerError::Serve(e)),
            _ => Ok(()),
        },
        error = metrics_failed => Err(error),
        error = failover_failed => Err(error),
    };
    poll.abort();
    link_watch.abort();
    peers_watch.abort();
    engine.shutdown().await;
    let _ = stop_tx.send(true);
    while servers.join_next().await.is_some() {}
    tracing::info!("stopped");
    outcome
}

/// A BGP session coming up or going down changes what a BGP announcement's phase should say:
/// re-evaluate at once rather than at the next link poll (`GetState` must say what is true). A
/// lagging receiver missed changes, so it re-evaluates too.
async fn follow_sessions(
    mut events: tokio::sync::broadcast::Receiver<proto::announcer::v1::Event>,
    engine: Arc<Engine>,
) {
    use proto::announcer::v1::event::Kind;
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match events.recv().await {
            Ok(event) if matches!(event.kind, Some(Kind::PeerChanged(_))) => {
                engine.refresh_bgp().await;
            }
            Ok(_) => {}
            Err(RecvError::Lagged(_)) => engine.refresh_bgp().await,
            Err(RecvError::Closed) => return,
        }
    }
}
