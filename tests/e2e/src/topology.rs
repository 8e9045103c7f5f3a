//! The namespaces: a bridge in its own namespace and one namespace per machine, each with
//! `eth0` on the bridge holding `192.0.2.<n>/24` and `2001:db8::<n>/64` (testinfra.md §1.1).
//! Names carry the test's process id, so parallel runs never collide; Drop deletes exactly
//! the namespaces this value created, even when a step failed halfway.

use std::io::Write;
use std::path::Path;
use std::process::Output;

use super::netns::{output, run, unique};

/// One machine on the LAN.
#[derive(Debug, Clone)]
pub struct Host {
    /// What the test calls it (`node-1`, `client`, ...).
    pub name: String,
    /// The network namespace.
    pub ns: String,
    pub ipv4: String,
    pub ipv6: String,
}

impl Host {
    /// `ip netns exec <ns> <args>`, whatever the exit status.
    pub fn exec(&self, args: &[&str]) -> Output {
        let mut full = vec!["ip", "netns", "exec", &self.ns];
        full.extend_from_slice(args);
        output(&full)
    }

    /// `ip netns exec <ns> <args>`, panicking with the output when it fails.
    pub fn exec_ok(&self, args: &[&str]) -> String {
        let mut full = vec!["ip", "netns", "exec", &self.ns];
        full.extend_from_slice(args);
        run(&full)
    }

    /// The MAC address of `eth0`, lower case.
    pub fn mac(&self) -> String {
        let out = run(&["ip", "-n", &self.ns, "-br", "link", "show", "dev", "eth0"]);
        out.split_whitespace()
            .nth(2)
            .unwrap_or_default()
            .to_lowercase()
    }

    /// Sets `name=value` sysctls inside the namespace (through /proc/sys, so procps' `sysctl`
    /// is not needed).
    pub fn sysctl(&self, settings: &[&str]) {
        for setting in settings {
            let (name, value) = setting.split_once('=').expect("sysctl as name=value");
            let path = format!("/proc/sys/{}", name.replace('.', "/"));
            self.exec_ok(&["sh", "-c", &format!("echo {value} > {path}")]);
        }
    }

    /// The link-layer address of `ip` in this host's neighbour table, with its state
    /// (`aa:bb:.. REACHABLE`), or None.
    pub fn neighbour(&self, ip: &str) -> Option<(String, String)> {
        let out = run(&["ip", "-n", &self.ns, "neigh", "show", ip, "dev", "eth0"]);
        let words: Vec<&str> = out.split_whitespace().collect();
        let at = words.iter().position(|w| *w == "lladdr")?;
        let mac = words.get(at + 1)?.to_lowercase();
        let state = words.last().map(|s| s.to_string()).unwrap_or_default();
        Some((mac, state))
    }
}

/// The LAN and its machines.
pub struct Topology {
    pub bridge_ns: String,
    pub hosts: Vec<Host>,
}

impl Topology {
    /// Creates the bridge and one host per `(name, last octet)`, named after the test's
    /// process id.
    pub fn new(machines: &[(&str, u8)]) -> Topology {
        Topology::named(&format!("flbe{}", unique("")), None, machines)
    }

    /// [`Topology::new`] with namespaces called `<prefix>br` and `<prefix><name>`, each name
    /// appended to the file `record` (one a line) before it is created, so a process that
    /// dies before Drop runs (`ferrolb-demo` on Ctrl-C) leaves a list of what to delete.
    pub fn named(prefix: &str, record: Option<&Path>, machines: &[(&str, u8)]) -> Topology {
        let remember = |ns: &str| {
            if let Some(path) = record {
                let line = format!("{ns}\n");
                let written = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .and_then(|mut file| file.write_all(line.as_bytes()));
                if let Err(e) = written {
                    panic!("cannot record namespace {ns} in {}: {e}", path.display());
                }
            }
        };
        let bridge_ns = format!("{prefix}br");
        let mut topology = Topology {
            bridge_ns: bridge_ns.clone(),
            hosts: Vec::new(),
        };
        remember(&bridge_ns);
        run(&["ip", "netns", "add", &bridge_ns]);
        run(&[
            "ip",
            "-n",
            &bridge_ns,
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ]);
        run(&["ip", "-n", &bridge_ns, "link", "set", "br0", "up"]);
        for (i, (name, octet)) in machines.iter().enumerate() {
            let short: String = name.chars().filter(char::is_ascii_alphanumeric).collect();
            let ns = format!("{prefix}{short}");
            remember(&ns);
            run(&["ip", "netns", "add", &ns]);
            // Recorded before configuring, so Drop deletes it even if a step below fails.
            let host = Host {
                name: name.to_string(),
                ns: ns.clone(),
                ipv4: format!("192.0.2.{octet}"),
                ipv6: format!("2001:db8::{octet}"),
            };
            topology.hosts.push(host.clone());
            let port = format!("p{i}");
            run(&[
                "ip", "link", "add", "eth0", "netns", &ns, "type", "veth", "peer", "name", &port,
                "netns", &bridge_ns,
            ]);
            run(&[
                "ip", "-n", &bridge_ns, "link", "set", &port, "master", "br0", "up",
            ]);
            run(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
            let v4 = format!("{}/24", host.ipv4);
            let v6 = format!("{}/64", host.ipv6);
            run(&["ip", "-n", &ns, "addr", "add", &v4, "dev", "eth0"]);
            run(&["ip", "-n", &ns, "addr", "add", &v6, "dev", "eth0", "nodad"]);
            run(&["ip", "-n", &ns, "link", "set", "eth0", "up"]);
        }
        topology
    }

    /// The host called `name`.
    pub fn host(&self, name: &str) -> &Host {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .unwrap_or_else(|| panic!("no host {name} in the topology"))
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for host in &self.hosts {
            let _ = super::netns::try_output(&["ip", "netns", "del", &host.ns]);
        }
        let _ = super::netns::try_output(&["ip", "netns", "del", &self.bridge_ns]);
    }
}
