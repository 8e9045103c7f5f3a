//! Wiring: watchers → the two jobs (allocate, announce) → writer and drivers, gated by the
//! Lease.
//!
//! ```text
//!   lease::run ──Claim──┬──────────────────────────────────────────────┐
//!                       ▼                                              ▼
//!   Service watcher ─┐                                          nodes::run
//!   ConfigMap watcher ┼─▶ index task: Index (allocate) ──Job──▶ Writer ──▶ API server
//!   Writer rereads ──┘         │ ▲
//!   Node watcher ──────┐       ▼ │ statuses, moves         (cluster mode only)
//!   EndpointSlice ─────┼─▶ announce::Job (plan) ──NodeDesired──▶ drivers ──gRPC──▶ announcers
//!   driver reports ────┘
//! ```
//!
//! A *term* starts when this replica's claim becomes current and ends when it lapses. Each
//! term builds a fresh index from fresh watches (adopt before allocate), so a replica that
//! stood by, or lost the Lease for a while, never acts on stale memory.

use std::sync::Arc;

use futures::{StreamExt, stream::BoxStream};
use k8s_openapi::api::{
    core::v1::{ConfigMap, Node, Secret, Service},
    discovery::v1::EndpointSlice,
};
use kube::{
    Api, Client,
    runtime::{WatchStreamExt, watcher},
};
use tokio::{
    sync::{mpsc, watch},
    task::JoinSet,
    time::Instant,
};

use crate::{
    announce::{
        driver::{ClientTls, DriverReport},
        heartbeat_key::{self, KeyOutcome},
        job::Job as AnnounceJob,
        model::{NodeInfo, NodeName},
        topology::{SliceId, SliceView, node_info, slice_view},
    },
    args::{AnnouncersMode, Args},
    http::{Health, Phase},
    index::{Index, IndexSettings, ServiceWrite, queries::Queries},
    lease::{self, Claim, LeaseSettings},
    metrics::Metrics,
    nodes,
    peers::{BgpPeer, PeerBook, PeerObject, watch as peer_watch, watch::SecretData},
    relist::{Change, relisted},
    service_view::{ClassFilter, ServiceView},
    stream::stream_of,
    writer::{EventBatch, EventSource, Job, Reread, Writer, publish_events},
};

/// Everything a term needs.
#[derive(Clone)]
pub struct Context {
    /// API client.
    pub client: Client,
    /// Index settings derived from the flags.
    pub settings: IndexSettings,
    /// Namespace of the pool ConfigMap.
    pub config_namespace: String,
    /// Name of the pool ConfigMap.
    pub config_name: String,
    /// Pool object kinds to watch (`--pool-objects`).
    pub pool_kinds: Vec<crate::pools::objects::PoolKind>,
    /// Lease identity (also the Events' reporting instance).
    pub identity: String,
    /// Writes in flight at once.
    pub write_concurrency: usize,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Readiness.
    pub health: Arc<Health>,
    /// Cluster mode (`--announcers=cluster`); `None` when another announcer is used.
    pub cluster: Option<ClusterContext>,
}

/// What the announce job needs.
#[derive(Clone)]
pub struct ClusterContext {
    /// The announcers' headless Service.
    pub announcer_service: crate::ipam::ServiceKey,
    /// Failover candidates per layer2/vip address.
    pub candidates: usize,
    /// The Secret (in `config_namespace`) holding the heartbeat key.
    pub heartbeat_secret: String,
    /// The client TLS material for announcers (from `certs`); `None` until there is some.
    pub tls: watch::Receiver<Option<Arc<ClientTls>>>,
}

impl Context {
    /// Builds the context from the flags.
    pub fn from_args(
        client: Client,
        args: &Args,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
    ) -> Self {
        Context {
            client,
            settings: IndexSettings {
                classes: ClassFilter {
                    class: args.effective_class(),
                    also_classless: args.also_classless,
                },
                write_load_balancer_ip: args.write_load_balancer_ip,
                status: args.status,
                reallocate_outside_pools: args.reallocate_outside_pools,
                config_source: format!("{}/{}", args.config_namespace, args.config_name),
                cluster_default_mode: (args.announcers == AnnouncersMode::Cluster)
                    .then_some(args.default_mode),
                ingress_ip_only: args.announcers == AnnouncersMode::None,
                requests_unchecked: args.requested_addresses
                    == crate::args::RequestedAddresses::Unchecked,
            },
            config_namespace: args.config_namespace.clone(),
            config_name: args.config_name.clone(),
            pool_kinds: args.pool_kinds(),
            identity: args.identity(),
            write_concurrency: args.write_concurrency,
            metrics,
            health,
            cluster: match (args.announcers, args.announcer_service_key()) {
                (AnnouncersMode::Cluster, Ok(announcer_service)) => Some(ClusterContext {
                    announcer_service,
                    candidates: args.failover_candidates,
                    heartbeat_secret: args.heartbeat_secret.clone(),
                    // Replaced by the caller with the certificate task's receiver.
                    tls: watch::channel(None).1,
                }),
                _ => None,
            },
        }
    }
}

/// Runs the controller forever: election, node initialization and the allocation terms.
pub async fn run(ctx: Context, args: &Args) {
    let (claim_tx, claims) = watch::channel(Claim::default());
    let mut background = JoinSet::new();
    if args.leader_elect {
        let settings = LeaseSettings {
            namespace: args.config_namespace.clone(),
            identity: ctx.identity.clone(),
            duration: args.lease_duration,
            renew_deadline: args.renew_deadline,
            retry_period: args.retry_period,
        };
        background.spawn(lease::run(
            ctx.client.clone(),
            settings,
            claim_tx,
            ctx.metrics.clone(),
        ));
    } else {
        claim_tx.send_replace(Claim::forever());
        ctx.metrics.leader.set(1);
        // Keep the sender alive for the life of the process.
        background.spawn(async move {
            let _claim_tx = claim_tx;
            std::future::pending::<()>().await;
        });
    }
    if args.initialize_nodes {
        background.spawn(nodes::run(
            ctx.client.clone(),
            claims.clone(),
            ctx.metrics.clone(),
        ));
    }
    let mut watch_claims = claims.clone();
    loop {
        ctx.health.set(Phase::StandingBy);
        lease::wait_for_claim(&mut watch_claims).await;
        ctx.health.set(Phase::Adopting);
        tracing::info!(identity = %ctx.identity, "leading: adopting existing allocations");
        tokio::select! {
            () = run_term(&ctx, claims.clone()) => {}
            () = lease::claim_lost(&mut watch_claims) => {
                tracing::warn!("leader claim lapsed: stopped writing; waiting to lead again");
            }
        }
    }
}

// Inputs are moved once from the stream into the loop; boxing would only add allocations.
#[allow(clippy::large_enum_variant)]
enum Input {
    Services(Result<Change<Service, ServiceView>, watcher::Error>),
    Config(Result<Change<ConfigMap, ConfigMap>, watcher::Error>),
    Reread(Reread),
    Nodes(Result<Change<Node, (NodeName, NodeInfo)>, watcher::Error>),
    Slices(Result<Change<EndpointSlice, (SliceId, SliceView)>, watcher::Error>),
    Driver(DriverReport),
    HeartbeatKey(KeyOutcome),
    Pools(crate::pool_watch::PoolChange),
    BgpPeers(Result<Change<PeerObject, PeerObject>, watcher::Error>),
    PeerSecrets(Result<Change<Secret, SecretData>, watcher::Error>),
}

/// One leadership term: fresh watches, fresh index, one writer. Runs until dropped.
pub async fn run_term(ctx: &Context, claims: watch::Receiver<Claim>) {
    // Only the compact views of a (re)list are buffered, never thousands of whole Services,
    // and views with equal pool queries share one.
    let mut queries = Queries::default();
    let services: BoxStream<'static, Input> = relisted(
        watcher(
            Api::<Service>::all(ctx.client.clone()),
            watcher::Config::default(),
        )
        .default_backoff(),
        move |service| {
            let mut view = ServiceView::from_service(&service)?;
            queries.share(&mut view.pool_query);
            Some(view)
        },
    )
    .map(Input::Services)
    .boxed();
    let config_api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ctx.config_namespace);
    let config_selector = format!("metadata.name={}", ctx.config_name);
    // The field selector already asks the API server for the pool ConfigMap only; this asks
    // the same question once more, here, for anything else a watch may deliver.
    let is_pool_config = {
        let name = ctx.config_name.clone();
        move |config: &ConfigMap| config.metadata.name.as_deref() == Some(name.as_str())
    };
    let in_list = is_pool_config.clone();
    let configs: BoxStream<'static, Input> = relisted(
        watcher(
            config_api,
            watcher::Config::default().fields(&config_selector),
        )
        .default_backoff(),
        move |config: ConfigMap| in_list(&config).then_some(config),
    )
    .filter(move |change| {
        std::future::ready(match change {
            Ok(Change::Applied(config) | Change::Deleted(config)) => is_pool_config(config),
            _ => true,
        })
    })
    .map(Input::Config)
    .boxed();
    let (reread_tx, reread_rx) = mpsc::unbounded_channel();
    let rereads = stream_of(reread_rx).map(Input::Reread).boxed();
    let mut streams = vec![services, configs, rereads];
    for &kind in &ctx.pool_kinds {
        streams.push(
            crate::pool_watch::watch_kind(ctx.client.clone(), kind)
                .map(Input::Pools)
                .boxed(),
        );
    }
    let mut announce = None;
    // Dropping the JoinSet (end of term) stops the key task.
    let mut key_task = JoinSet::new();
    if let Some(cluster) = &ctx.cluster {
        let nodes = relisted(
            watcher(
                Api::<Node>::all(ctx.client.clone()),
                watcher::Config::default(),
            )
            .default_backoff(),
            |node| node_info(&node),
        )
        .map(Input::Nodes)
        .boxed();
        let slices = relisted(
            watcher(
                Api::<EndpointSlice>::all(ctx.client.clone()),
                watcher::Config::default(),
            )
            .default_backoff(),
            |slice| slice_view(&slice),
        )
        .map(Input::Slices)
        .boxed();
        let (report_tx, report_rx) = mpsc::unbounded_channel();
        let (key_tx, key_rx) = mpsc::unbounded_channel();
        key_task.spawn(heartbeat_key::run(
            ctx.client.clone(),
            ctx.config_namespace.clone(),
            cluster.heartbeat_secret.clone(),
            key_tx,
            ctx.metrics.clone(),
        ));
        streams.extend([
            nodes,
            slices,
            stream_of(report_rx).map(Input::Driver).boxed(),
            stream_of(key_rx).map(Input::HeartbeatKey).boxed(),
            peer_watch::watch_peers(ctx.client.clone())
                .map(Input::BgpPeers)
                .boxed(),
            peer_watch::watch_secrets(ctx.client.clone(), &ctx.config_namespace)
                .map(Input::PeerSecrets)
                .boxed(),
        ]);
        let epoch = claims.borrow().epoch;
        announce = Some(AnnounceJob::new(
            cluster.announcer_service.clone(),
            cluster.candidates,
            epoch,
            cluster.tls.clone(),
            report_tx,
            ctx.metrics.clone(),
            PeerBook::new(&ctx.config_namespace),
        ));
    }
    let mut inputs = futures::stream::select_all(streams);

    let (job_tx, job_rx) = mpsc::unbounded_channel();
    let (event_tx, event_rx) = mpsc::unbounded_channel();
    let config_events = event_tx.clone();
    let source = EventSource {
        controller: "ferrolb-provider".into(),
        instance: ctx.identity.clone(),
    };
    let claims_for_status = claims.clone();
    let claims_for_peers = claims.clone();
    let writer = Writer {
        client: ctx.client.clone(),
        events: event_tx,
        claims: claims.clone(),
        metrics: ctx.metrics.clone(),
        rereads: reread_tx,
        concurrency: ctx.write_concurrency,
    };
    // Dropping the JoinSet (end of term) aborts the writer and the Event publisher.
    let mut writer_task = JoinSet::new();
    writer_task.spawn(writer.run(job_rx));
    writer_task.spawn(publish_events(
        ctx.client.clone(),
        source,
        event_rx,
        claims,
        ctx.metrics.clone(),
        // Events trail the writes; every request in flight holds an API connection (~35 KiB).
        (ctx.write_concurrency / 8).max(1),
    ));

    let (status_tx, status_rx) = mpsc::unbounded_channel();
    writer_task.spawn(crate::pool_watch::write_statuses(
        ctx.client.clone(),
        status_rx,
        claims_for_status,
        ctx.metrics.clone(),
    ));
    let mut pool_statuses = crate::pools::objects::status::StatusBook::default();
    let (peer_status_tx, peer_status_rx) = mpsc::unbounded_channel();
    if ctx.cluster.is_some() {
        writer_task.spawn(peer_watch::write_statuses(
            ctx.client.clone(),
            peer_status_rx,
            claims_for_peers,
            ctx.metrics.clone(),
        ));
    }
    let mut peer_statuses = crate::peers::status::StatusBook::default();

    let mut index = Index::new(ctx.settings.clone(), ctx.metrics.clone());
    index.expect_pool_kinds(&ctx.pool_kinds);
    // Pool figures cost O(allocations) to compute: refresh them on a timer, not per event.
    let mut stats_tick = tokio::time::interval(std::time::Duration::from_secs(1));
    // The announce job runs at most every few milliseconds: a burst of events costs one
    // placement per touched address, and one Sync per node.
    let mut announce_tick = tokio::time::interval(std::time::Duration::from_millis(20));
    announce_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut announce_dirty = false;
    // Something happened since the last second's tick: give freed memory back then.
    let mut busy = false;
    loop {
        let input = tokio::select! {
            input = inputs.next() => match input {
                Some(input) => input,
                None => return,
            },
            _ = stats_tick.tick() => {
                if index.is_serving() {
                    index.publish_stats();
                    let now = k8s_openapi::jiff::Timestamp::now();
                    for report in index.pool_reports() {
                        if let Some(status) = pool_statuses.due(&report, now) {
                            let _ = status_tx.send(crate::pool_watch::StatusWrite {
                                kind: report.object.kind,
                                name: report.object.meta.name.clone(),
                                status,
                            });
                        }
                    }
                }
                if let Some(job) = announce.as_ref().filter(|job| job.ready(&index)) {
                    let now = k8s_openapi::jiff::Timestamp::now();
                    for report in job.peer_reports() {
                        if let Some(status) = peer_statuses.due(&report, now) {
                            let _ = peer_status_tx.send(peer_watch::StatusWrite {
                                name: report.name,
                                status,
                            });
                        }
                    }
                }
                if std::mem::take(&mut busy) {
                    crate::memory::release_free_memory();
                }
                continue;
            }
            _ = announce_tick.tick(), if announce_dirty => {
                announce_dirty = false;
                if let Some(job) = announce.as_mut() {
                    send_writes(&job_tx, job.flush(&mut index));
                }
                continue;
            }
        };
        announce_dirty |= announce.is_some();
        busy = true;
        let writes = match input {
            Input::Services(Ok(change)) => match change {
                Change::Listed(views) => index.reset_views(views),
                Change::Applied(service) => index.apply_service(&service),
                Change::Deleted(service) => index.delete_service(
                    service.metadata.namespace.as_deref().unwrap_or_default(),
                    service.metadata.name.as_deref().unwrap_or_default(),
                ),
            },
            Input::Config(Ok(change)) => {
                // Only real data proves the ConfigMap readable again.
                index.config_readable();
                match change {
                    Change::Listed(listed) => index.apply_config(listed.first()),
                    Change::Applied(config) => index.apply_config(Some(&config)),
                    Change::Deleted(_) => index.apply_config(None),
                }
            }
            Input::Config(Err(error)) => {
                ctx.metrics.reconcile_error("watch");
                index.config_read_failed(&error.to_string())
            }
            Input::Services(Err(error)) => {
                tracing::warn!(%error, "watch failed; the watcher retries with backoff");
                ctx.metrics.reconcile_error("watch");
                Vec::new()
            }
            Input::Reread(Reread::Found { failed, service }) => {
                index.apply_reread(&failed, &service)
            }
            Input::Reread(Reread::Gone { failed, key }) => index.reread_gone(&failed, &key),
            Input::Nodes(Ok(change)) => {
                if let Some(job) = announce.as_mut() {
                    job.node_change(change);
                }
                Vec::new()
            }
            Input::Slices(Ok(change)) => {
                if let Some(job) = announce.as_mut() {
                    job.slice_change(change);
                }
                Vec::new()
            }
            Input::Nodes(Err(error)) | Input::Slices(Err(error)) => {
                tracing::warn!(%error, "watch failed; the watcher retries with backoff");
                ctx.metrics.reconcile_error("watch");
                Vec::new()
            }
            Input::Driver(report) => {
                if let Some(job) = announce.as_mut() {
                    job.report(report);
                }
                Vec::new()
            }
            Input::Pools(crate::pool_watch::PoolChange { kind, change }) => match change {
                Ok(Change::Listed(objects)) => {
                    let mut pools = Vec::with_capacity(objects.len());
                    for object in objects {
                        pool_statuses.observe(kind, &object.pool.meta.name, object.status);
                        pools.push(object.pool);
                    }
                    index.reset_pool_objects(kind, pools)
                }
                Ok(Change::Applied(object)) => {
                    pool_statuses.observe(kind, &object.pool.meta.name, object.status);
                    index.apply_pool_object(object.pool)
                }
                Ok(Change::Deleted(object)) => {
                    pool_statuses.forget(kind, &object.pool.meta.name);
                    index.delete_pool_object(kind, &object.pool.meta.name)
                }
                Err(error) => {
                    tracing::warn!(%kind, %error, "pool watch failed; the watcher retries with backoff");
                    ctx.metrics.reconcile_error("watch");
                    Vec::new()
                }
            },
            Input::BgpPeers(change) => {
                match (change, announce.as_mut()) {
                    (Ok(change), Some(job)) => {
                        job.peer_change(observe_peers(&mut peer_statuses, change))
                    }
                    (Err(error), _) => {
                        tracing::warn!(%error, "BGPPeer watch failed; the watcher retries with backoff");
                        ctx.metrics.reconcile_error("watch");
                    }
                    _ => {}
                }
                Vec::new()
            }
            Input::PeerSecrets(change) => {
                match (change, announce.as_mut()) {
                    (Ok(change), Some(job)) => {
                        let change = match change {
                            Change::Listed(all) => Some(Change::Listed(all)),
                            Change::Applied(secret) => {
                                peer_watch::secret_data(&secret).map(Change::Applied)
                            }
                            Change::Deleted(secret) => {
                                peer_watch::secret_data(&secret).map(Change::Deleted)
                            }
                        };
                        if let Some(change) = change {
                            job.secret_change(change);
                        }
                    }
                    (Err(error), _) => {
                        tracing::warn!(%error, "password Secret watch failed; the watcher retries with backoff");
                        ctx.metrics.reconcile_error("watch");
                    }
                    _ => {}
                }
                Vec::new()
            }
            Input::HeartbeatKey(outcome) => {
                if let Some(job) = announce.as_mut() {
                    job.key_outcome(outcome);
                }
                Vec::new()
            }
        };
        if let Some(events) = index.take_config_events() {
            // Warnings about the ConfigMap (differences from kube-vip-cloud-provider) go on
            // the ConfigMap itself; the publisher drops them unless this replica leads.
            let _ = config_events.send(EventBatch {
                kind: "ConfigMap",
                key: events.key,
                uid: events.uid,
                notes: events.notes,
            });
        }
        if index.is_serving() && ctx.health.phase() != Phase::Serving {
            ctx.health.set(Phase::Serving);
        }
        send_writes(&job_tx, writes);
    }
}

/// Records the statuses the watch shows (the status book writes only changes) and hands the
/// objects on.
fn observe_peers(
    book: &mut crate::peers::status::StatusBook,
    change: Change<PeerObject, PeerObject>,
) -> Change<BgpPeer, BgpPeer> {
    match change {
        Change::Listed(objects) => Change::Listed(
            objects
                .into_iter()
                .map(|object| {
                    book.observe(&object.peer.name, object.status);
                    object.peer
                })
                .collect(),
        ),
        Change::Applied(object) => {
            book.observe(&object.peer.name, object.status);
            Change::Applied(object.peer)
        }
        Change::Deleted(object) => {
            book.forget(&object.peer.name);
            Change::Deleted(object.peer)
        }
    }
}

fn send_writes(jobs: &mpsc::UnboundedSender<Job>, writes: Vec<ServiceWrite>) {
    let observed = Instant::now();
    for write in writes {
        // The writer only stops when the term ends, and then these writes are moot.
        let _ = jobs.send(Job { write, observed });
    }
}
