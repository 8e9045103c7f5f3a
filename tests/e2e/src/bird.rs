//! The router: BIRD 2 in its own namespace, passive, accepting BGP from any node of the LAN
//! (`neighbor range`, testinfra.md §2.2) and installing what it learns into its kernel
//! table. BIRD has no JSON output, so routes are read from `birdc show route all for <p>`.

use std::path::{Path, PathBuf};

use super::daemon::Daemon;
use super::topology::Host;

/// AS numbers: the router, and every node (eBGP).
pub const ROUTER_ASN: u32 = 64512;
pub const NODE_ASN: u32 = 64513;

pub struct Bird {
    pub daemon: Daemon,
    socket: PathBuf,
}

impl Bird {
    /// Starts BIRD in `router`'s namespace; config, control socket and log in `dir`.
    pub fn start(router: &Host, dir: &Path) -> Bird {
        let config = format!(
            r#"router id {ip};
log stderr all;
protocol device {{ scan time 1; }}
protocol kernel k4 {{ ipv4 {{ export all; }}; }}
protocol kernel k6 {{ ipv6 {{ export all; }}; }}
protocol bgp nodes {{
  local {ip} as {ROUTER_ASN};
  neighbor range 192.0.2.0/24 as {NODE_ASN};
  passive on;
  hold time 9; keepalive time 3;
  ipv4 {{ import all; export none; }};
  ipv6 {{ import all; export none; }};
}}
"#,
            ip = router.ipv4
        );
        let path = dir.join("bird.conf");
        std::fs::write(&path, config).expect("write bird.conf");
        let socket = dir.join("bird.ctl");
        let daemon = Daemon::spawn(
            "bird",
            &router.ns,
            &[
                "bird",
                "-f",
                "-c",
                &path.to_string_lossy(),
                "-s",
                &socket.to_string_lossy(),
                "-P",
                &dir.join("bird.pid").to_string_lossy(),
            ],
            &[],
            dir,
        );
        Bird { daemon, socket }
    }

    /// Runs a birdc command; its output (empty when BIRD is not answering yet).
    pub fn birdc(&self, command: &str) -> String {
        let socket = self.socket.to_string_lossy().into_owned();
        let mut args = vec!["birdc", "-s", &socket];
        args.extend(command.split(' '));
        super::netns::try_output(&args)
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    /// The next hops BIRD holds for `prefix` (one per node advertising it), sorted; empty
    /// when no BGP route for it exists.
    pub fn next_hops(&self, prefix: &str) -> Vec<String> {
        let table = if prefix.contains(':') {
            "master6"
        } else {
            "master4"
        };
        let text = self.birdc(&format!("show route table {table} for {prefix}"));
        let mut hops: Vec<String> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("via "))
            .filter_map(|rest| rest.split_whitespace().next())
            .map(str::to_string)
            .collect();
        hops.sort();
        hops.dedup();
        hops
    }

    /// The BGP sessions in state Established, by neighbour address.
    pub fn established_neighbours(&self) -> Vec<String> {
        let protocols = self.birdc("show protocols all");
        // Each dynamic session is a protocol block; its "Neighbor address:" line follows
        // the "BGP state: Established" line within the block.
        let mut result = Vec::new();
        let mut established = false;
        for line in protocols.lines() {
            let line = line.trim();
            if line.starts_with("BGP state:") {
                established = line.contains("Established");
            } else if let Some(address) = line.strip_prefix("Neighbor address:") {
                if established {
                    result.push(address.trim().to_string());
                }
                established = false;
            }
        }
        result.sort();
        result
    }
}
