//! `ferrolb-announcer ctl`: an operator client of the announcer API.
//!
//! Every command prints JSON (one object per line for `watch`) so it can be piped to `jq`
//! and used by tests. `--server` takes `unix:<path>`, `http://host:port` or
//! `https://host:port` (then `--tls-ca`, `--tls-cert`, `--tls-key` give the TLS material).

use std::collections::HashMap;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use hyper_util::rt::TokioIo;
use proto::announcer::v1::{self as pb, announcer_client::AnnouncerClient, event::Kind};
use serde::Deserialize;
use serde_json::{Value, json};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::model::{Mode, Selector};

/// `ctl` flags.
#[derive(Debug, Args)]
pub struct CtlArgs {
    /// The announcer to talk to: unix:<path>, http://host:port or https://host:port.
    #[arg(
        long,
        env = "FERROLB_SERVER",
        default_value = "unix:/run/ferrolb/announcer.sock"
    )]
    pub server: String,
    /// PEM CA bundle to verify the server certificate (https only).
    #[arg(long = "tls-ca", env = "FERROLB_CTL_TLS_CA")]
    pub ca: Option<PathBuf>,
    /// PEM client certificate (https only).
    #[arg(long = "tls-cert", env = "FERROLB_CTL_TLS_CERT", requires = "key")]
    pub cert: Option<PathBuf>,
    /// PEM private key of the client certificate.
    #[arg(long = "tls-key", env = "FERROLB_CTL_TLS_KEY", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Name expected in the server certificate (default: the host of --server).
    #[arg(long = "tls-server-name", env = "FERROLB_CTL_TLS_SERVER_NAME")]
    pub server_name: Option<String>,
    #[command(subcommand)]
    pub command: CtlCommand,
}

#[derive(Debug, Subcommand)]
pub enum CtlCommand {
    /// Print what is announced, where, and the health of each mode.
    State,
    /// Announce one address.
    Announce {
        /// The IPv4 or IPv6 address.
        address: String,
        /// layer2, vip or bgp.
        #[arg(long, default_value = "layer2")]
        mode: String,
        /// Interface: a name, can_reach:<address>, or auto (the interface whose subnet holds
        /// the address).
        #[arg(long, default_value = "auto")]
        interface: String,
        /// Label KEY=VALUE saying which Service this serves (repeatable).
        #[arg(long = "label")]
        labels: Vec<String>,
        /// Failover candidate node, owner first (repeatable; layer2 and vip).
        #[arg(long = "candidate")]
        candidates: Vec<String>,
        /// BGP attributes of this route (mode bgp).
        #[command(flatten)]
        bgp: crate::bgp::ctl::AnnouncementAttributes,
    },
    /// Withdraw one address.
    Withdraw {
        address: String,
        /// layer2, vip or bgp; omitted: every mode.
        #[arg(long)]
        mode: Option<String>,
    },
    /// Replace the whole desired set with the announcements in a JSON file
    /// (`[{"address": "...", "mode": "layer2", "interface": "eth0", "labels": {...},
    /// "candidates": ["node-a", "node-b"]}]`; mode bgp entries also take "communities",
    /// "large_communities", "local_pref" and "med").
    Sync {
        /// Generation of this set; must not be lower than the accepted one.
        #[arg(long)]
        generation: u64,
        /// The JSON file; `-` reads standard input.
        #[arg(long)]
        file: PathBuf,
        /// The name of the node the announcer runs on, as the sender knows it.
        #[arg(long, default_value = "")]
        node: String,
        /// Failover peer NODE=IP: where that node's announcer receives heartbeats (repeatable).
        #[arg(long = "failover-peer")]
        failover_peers: Vec<String>,
        /// File holding the 32-byte heartbeat key (raw, or 64 hex characters); without it the
        /// announcer does no failover of its own.
        #[arg(long)]
        heartbeat_key_file: Option<PathBuf>,
    },
    /// BGP peers: list, add, delete.
    #[command(subcommand)]
    Peers(crate::bgp::ctl::PeersCommand),
    /// Stream events as JSON lines.
    Watch {
        /// Stop after this many events (default: run until interrupted).
        #[arg(long)]
        count: Option<usize>,
    },
}

/// A `ctl` failure, printed to stderr; the exit code is 1.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    #[error("{0}")]
    Usage(String),
    #[error("connecting to {server}: {source}")]
    Connect {
        server: String,
        source: tonic::transport::Error,
    },
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{code:?}: {message}{}", cause.as_ref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Rpc {
        code: tonic::Code,
        message: String,
        /// The innermost error below the status, if any (a transport error, e.g. a TLS alert).
        cause: Option<String>,
    },
    #[error(
        "{server} closed the TLS connection at the first call: it requires a client certificate and none was given; pass --tls-cert and --tls-key (or FERROLB_CTL_TLS_CERT and FERROLB_CTL_TLS_KEY) ({code:?}: {message})"
    )]
    ClientCertificateMissing {
        server: String,
        code: tonic::Code,
        message: String,
    },
    #[error(
        "{server} closed the TLS connection at the first call: it refused the client certificate {cert} (is it signed by the CA the server trusts with --client-ca?) ({code:?}: {message})"
    )]
    ClientCertificateRefused {
        server: String,
        cert: PathBuf,
        code: tonic::Code,
        message: String,
    },
}

impl CtlError {
    /// With TLS 1.3 a server checks the client certificate after the client considers the
    /// handshake done, so a missing or refused certificate surfaces at the first call,
    /// depending on timing as CANCELLED "operation was canceled", UNAVAILABLE, or UNKNOWN
    /// "transport error" caused by the server's alert (`CertificateRequired`, `UnknownCA`) or
    /// a broken pipe. Say what that means instead.
    fn explained(self, server: &str, cert: Option<PathBuf>) -> CtlError {
        let CtlError::Rpc {
            code,
            message,
            cause,
        } = self
        else {
            return self;
        };
        // A status the server sent has no cause; one the transport made up has.
        let transport = matches!(code, tonic::Code::Cancelled | tonic::Code::Unavailable)
            || (code == tonic::Code::Unknown && cause.is_some());
        if !transport || !server.starts_with("https://") {
            return CtlError::Rpc {
                code,
                message,
                cause,
            };
        }
        let message = match cause {
            Some(cause) => format!("{message}: {cause}"),
            None => message,
        };
        let server = server.to_string();
        match cert {
            None => CtlError::ClientCertificateMissing {
                server,
                code,
                message,
            },
            Some(cert) => CtlError::ClientCertificateRefused {
                server,
                cert,
                code,
                message,
            },
        }
    }
}

impl From<tonic::Status> for CtlError {
    fn from(status: tonic::Status) -> Self {
        // The innermost cause says what the transport saw, e.g. a TLS alert.
        let mut cause = std::error::Error::source(&status).map(ToString::to_string);
        let mut next = std::error::Error::source(&status).and_then(|c| c.source());
        while let Some(c) = next {
            cause = Some(c.to_string());
            next = c.source();
        }
        CtlError::Rpc {
            cause,
            code: status.code(),
            message: status.message().to_string(),
        }
    }
}

fn read(path: &PathBuf) -> Result<Vec<u8>, CtlError> {
    std::fs::read(path).map_err(|source| CtlError::Read {
        path: path.clone(),
        source,
    })
}

/// Connects to `args.server`.
pub async fn connect(args: &CtlArgs) -> Result<AnnouncerClient<Channel>, CtlError> {
    let server = args.server.clone();
    let connect_error = |source| CtlError::Connect {
        server: server.clone(),
        source,
    };
    let channel = if let Some(path) = server.strip_prefix("unix:") {
        let path = PathBuf::from(path);
        // The URI is required by the API but unused: the connector dials the socket.
        Endpoint::from_static("http://localhost")
            .connect_with_connector(tower::service_fn(move |_| {
                let path = path.clone();
                async move {
                    Ok::<_, std::io::Error>(TokioIo::new(
                        tokio::net::UnixStream::connect(path).await?,
                    ))
                }
            }))
            .await
            .map_err(connect_error)?
    } else {
        let mut endpoint = Endpoint::from_shared(server.clone()).map_err(connect_error)?;
        if server.starts_with("https://") {
            let mut tls = ClientTlsConfig::new();
            if let Some(ca) = &args.ca {
                tls = tls.ca_certificate(Certificate::from_pem(read(ca)?));
            }
            if let (Some(cert), Some(key)) = (&args.cert, &args.key) {
                tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
            }
            if let Some(name) = &args.server_name {
                tls = tls.domain_name(name.clone());
            }
            endpoint = endpoint.tls_config(tls).map_err(connect_error)?;
        }
        endpoint.connect().await.map_err(connect_error)?
    };
    Ok(AnnouncerClient::new(channel))
}

fn parse_mode(text: &str) -> Result<Mode, CtlError> {
    Mode::parse(text)
        .ok_or_else(|| CtlError::Usage(format!("--mode {text:?}: use layer2, vip or bgp")))
}

fn announcement(
    address: &str,
    mode: &str,
    interface: &str,
    labels: HashMap<String, String>,
    candidates: Vec<String>,
    bgp: Option<pb::BgpAttributes>,
) -> Result<pb::Announcement, CtlError> {
    let selector =
        Selector::parse(interface).map_err(|e| CtlError::Usage(format!("--interface {e}")))?;
    Ok(pb::Announcement {
        address: address.to_string(),
        mode: parse_mode(mode)?.to_proto().into(),
        interface: Some(selector.to_proto()),
        labels,
        bgp,
        candidates,
    })
}

/// A heartbeat key file: 32 raw bytes, or 64 hex characters (surrounding whitespace ignored).
fn key_from_file(path: &PathBuf) -> Result<Vec<u8>, CtlError> {
    let bytes = read(path)?;
    let text = String::from_utf8_lossy(&bytes);
    let hex = text.trim();
    if hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Ok((0..32)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or(0))
            .collect());
    }
    Ok(bytes)
}

/// One entry of a `ctl sync` file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAnnouncement {
    address: String,
    mode: String,
    #[serde(default)]
    interface: String,
    #[serde(default)]
    labels: HashMap<String, String>,
    /// Failover candidates, owner first (layer2 and vip).
    #[serde(default)]
    candidates: Vec<String>,
    /// BGP attributes (mode bgp), as the flags of `ctl announce`. Not flattened from
    /// `AnnouncementAttributes`: serde cannot deny unknown keys through a flattened struct.
    #[serde(default)]
    communities: Vec<String>,
    #[serde(default)]
    large_communities: Vec<String>,
    #[serde(default)]
    local_pref: Option<u32>,
    #[serde(default)]
    med: Option<u32>,
}

/// Runs one `ctl` command, printing JSON to standard output.
pub async fn run(args: CtlArgs) -> Result<(), CtlError> {
    let mut client = connect(&args).await?;
    let CtlArgs {
        server,
        cert,
        command,
        ..
    } = args;
    execute(&mut client, command)
        .await
        .map_err(|e| e.explained(&server, cert))
}

async fn execute(
    client: &mut AnnouncerClient<Channel>,
    command: CtlCommand,
) -> Result<(), CtlError> {
    match command {
        CtlCommand::State => {
            let state = client.get_state(pb::GetStateRequest {}).await?.into_inner();
            println!("{}", state_json(&state));
        }
        CtlCommand::Announce {
            address,
            mode,
            interface,
            labels,
            candidates,
            bgp,
        } => {
            let labels = labels
                .iter()
                .map(|l| {
                    l.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .ok_or_else(|| {
                            CtlError::Usage(format!("--label {l:?}: expected KEY=VALUE"))
                        })
                })
                .collect::<Result<HashMap<_, _>, _>>()?;
            let request = pb::AnnounceRequest {
                announcement: Some(announcement(
                    &address,
                    &mode,
                    &interface,
                    labels,
                    candidates,
                    bgp.to_proto(),
                )?),
            };
            let response = client.announce(request).await?.into_inner();
            println!(
                "{}",
                response
                    .status
                    .as_ref()
                    .map(status_json)
                    .unwrap_or(Value::Null)
            );
        }
        CtlCommand::Withdraw { address, mode } => {
            let mode = match mode {
                Some(m) => parse_mode(&m)?.to_proto(),
                None => pb::Mode::Unspecified,
            };
            let response = client
                .withdraw(pb::WithdrawRequest {
                    address,
                    mode: mode.into(),
                })
                .await?
                .into_inner();
            println!("{}", json!({ "withdrawn": response.withdrawn }));
        }
        CtlCommand::Sync {
            generation,
            file,
            node,
            failover_peers,
            heartbeat_key_file,
        } => {
            let failover_peers = failover_peers
                .iter()
                .map(|p| match p.split_once('=') {
                    Some((node, address)) => Ok(pb::FailoverPeer {
                        node: node.to_string(),
                        address: address.to_string(),
                    }),
                    None => Err(CtlError::Usage(format!(
                        "--failover-peer {p:?}: expected NODE=IP"
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()?;
            let heartbeat_key = match &heartbeat_key_file {
                Some(path) => key_from_file(path)?,
                None => Vec::new(),
            };
            let bytes = if file.as_os_str() == "-" {
                let mut buf = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).map_err(|source| {
                    CtlError::Read {
                        path: file.clone(),
                        source,
                    }
                })?;
                buf
            } else {
                read(&file)?
            };
            let entries: Vec<FileAnnouncement> = serde_json::from_slice(&bytes)
                .map_err(|e| CtlError::Usage(format!("{}: {e}", file.display())))?;
            let announcements = entries
                .into_iter()
                .enumerate()
                .map(|(i, e)| {
                    let bgp = crate::bgp::ctl::AnnouncementAttributes {
                        communities: e.communities,
                        large_communities: e.large_communities,
                        local_pref: e.local_pref,
                        med: e.med,
                    }
                    .to_proto();
                    announcement(
                        &e.address,
                        &e.mode,
                        &e.interface,
                        e.labels,
                        e.candidates,
                        bgp,
                    )
                    .map_err(|err| CtlError::Usage(format!("{} entry {i}: {err}", file.display())))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let r = client
                .sync(pb::SyncRequest {
                    generation,
                    announcements,
                    node,
                    failover_peers,
                    heartbeat_key,
                })
                .await?
                .into_inner();
            println!(
                "{}",
                json!({"generation": r.generation, "added": r.added, "removed": r.removed, "unchanged": r.unchanged})
            );
        }
        CtlCommand::Peers(command) => crate::bgp::ctl::run(client, command).await?,
        CtlCommand::Watch { count } => {
            let mut stream = client
                .watch_events(pb::WatchEventsRequest {})
                .await?
                .into_inner();
            let mut seen = 0;
            // Tells a caller (or a test) that the subscription is in place.
            eprintln!("watching");
            while count.is_none_or(|c| seen < c) {
                match stream.message().await? {
                    Some(event) => {
                        println!("{}", event_json(&event));
                        seen += 1;
                    }
                    None => break,
                }
            }
        }
    }
    Ok(())
}

fn mode_name(value: i32) -> &'static str {
    match Mode::from_proto(value) {
        Ok(Some(mode)) => mode.as_str(),
        _ => "unspecified",
    }
}

fn phase_name(value: i32) -> &'static str {
    match pb::Phase::try_from(value) {
        Ok(pb::Phase::Active) => "active",
        Ok(pb::Phase::Pending) => "pending",
        Ok(pb::Phase::Failed) => "failed",
        Ok(pb::Phase::Standby) => "standby",
        _ => "unspecified",
    }
}

/// JSON form of an announcement status.
pub fn status_json(status: &pb::AnnouncementStatus) -> Value {
    let a = status.announcement.clone().unwrap_or_default();
    json!({
        "address": a.address,
        "mode": mode_name(a.mode),
        "labels": a.labels,
        "candidates": a.candidates,
        "bgp": crate::bgp::ctl::attributes_json(a.bgp.as_ref()),
        "phase": phase_name(status.phase),
        "interface": status.interface,
        "mac": status.mac,
        "message": status.message,
        "holder": status.holder,
        "since_unix_ms": status.since_unix_ms,
    })
}

fn state_json(state: &pb::State) -> Value {
    json!({
        "generation": state.generation,
        "announcements": state.announcements.iter().map(status_json).collect::<Vec<_>>(),
        "modes": state.modes.iter().map(|m| json!({"mode": mode_name(m.mode), "healthy": m.healthy, "message": m.message})).collect::<Vec<_>>(),
        "peers": state.peers.iter().map(|p| json!({
            "address": p.peer.as_ref().map(|p| p.address.clone()).unwrap_or_default(),
            "state": p.state,
            "last_error": p.last_error,
        })).collect::<Vec<_>>(),
    })
}

/// JSON form of an event: `{"unix_ms": .., "type": "conflict", ...}`.
pub fn event_json(event: &pb::Event) -> Value {
    let mut value = match &event.kind {
        Some(Kind::AnnouncementChanged(c)) => {
            let mut v = c
                .status
                .as_ref()
                .map(status_json)
                .unwrap_or_else(|| json!({}));
            v["type"] = json!("announcement_changed");
            v["removed"] = json!(c.removed);
            v
        }
        Some(Kind::Conflict(c)) => json!({
            "type": "conflict", "address": c.address, "interface": c.interface,
            "our_mac": c.our_mac, "other_mac": c.other_mac, "evidence": c.evidence,
        }),
        Some(Kind::Error(e)) => {
            json!({"type": "error", "subject": e.subject, "message": e.message})
        }
        Some(Kind::PeerChanged(p)) => json!({
            "type": "peer_changed",
            "address": p.status.as_ref().and_then(|s| s.peer.as_ref()).map(|p| p.address.clone()).unwrap_or_default(),
            "state": p.status.as_ref().map(|s| s.state).unwrap_or_default(),
        }),
        None => json!({"type": "unknown"}),
    };
    value["unix_ms"] = json!(event.unix_ms);
    value
}
