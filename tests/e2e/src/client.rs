//! What a user on the LAN sees: the client's neighbour table, a TCP connection to the
//! load-balancer address (answered by whichever node's `e2e-hello` the address leads to),
//! and a steady ping whose loss shows any flap.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use super::daemon::Daemon;
use super::topology::Host;

/// Connects to `address:80` from inside `host`'s namespace and returns the greeting, e.g.
/// `You've hit node-2` (the body of `e2e-hello`'s HTTP response; it answers before any
/// request, so the probe sends none).
pub fn tcp_hello(host: &Host, address: &str) -> Result<String, String> {
    tcp_hello_at(host, address, 80)
}

/// [`tcp_hello`] on another port.
pub fn tcp_hello_at(host: &Host, address: &str, port: u16) -> Result<String, String> {
    let response = tcp_exchange(host, address, port, b"")?;
    Ok(match response.split_once("\r\n\r\n") {
        Some((_, body)) => body.trim().to_string(),
        None => response,
    })
}

/// `GET <path>` over HTTP/1.0 to `address:port` from inside `host`'s namespace; the whole
/// response.
pub fn http_get(host: &Host, address: &str, port: u16, path: &str) -> Result<String, String> {
    tcp_exchange(
        host,
        address,
        port,
        format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes(),
    )
}

/// An HTTP/1.0 request with a JSON-ish body to `address:port` from inside `host`'s
/// namespace; the status code and the response body.
pub fn http_request(
    host: &Host,
    address: &str,
    port: u16,
    request: (&str, &str, &str),
    body: &str,
) -> Result<(u16, String), String> {
    let (method, path, content_type) = request;
    let head = format!(
        "{method} {path} HTTP/1.0\r\nContent-Type: {content_type}\r\nAccept: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let response = tcp_exchange(host, address, port, format!("{head}{body}").as_bytes())?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no HTTP status in {response:?}"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// Connects to `address:port` from a thread that enters `host`'s namespace (so the test
/// process itself stays where it is), sends `request`, and reads until the peer closes.
fn tcp_exchange(host: &Host, address: &str, port: u16, request: &[u8]) -> Result<String, String> {
    let ip: IpAddr = address
        .parse()
        .map_err(|e| format!("{address:?} is not an IP address: {e}"))?;
    let ns_path = format!("/run/netns/{}", host.ns);
    let from = host.name.clone();
    std::thread::scope(|scope| {
        scope
            .spawn(move || {
                let ns =
                    std::fs::File::open(&ns_path).map_err(|e| format!("open {ns_path}: {e}"))?;
                nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|e| format!("setns {ns_path}: {e}"))?;
                let target = SocketAddr::new(ip, port);
                let mut stream = TcpStream::connect_timeout(&target, Duration::from_secs(2))
                    .map_err(|e| format!("TCP connect to {target} from {from}: {e}"))?;
                stream
                    .set_read_timeout(Some(Duration::from_secs(2)))
                    .map_err(|e| e.to_string())?;
                stream
                    .write_all(request)
                    .map_err(|e| format!("writing to {target}: {e}"))?;
                let mut text = String::new();
                stream
                    .read_to_string(&mut text)
                    .map_err(|e| format!("reading from {target}: {e}"))?;
                Ok(text.trim().to_string())
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// The distinct MACs that answer three ARP requests for `ip` sent from `host` (Habets'
/// `arping`, as installed by scripts/install-test-deps.sh): more than one means two nodes
/// answer for the address.
pub fn arp_responders(host: &Host, ip: &str) -> Vec<String> {
    let out = host.exec(&["arping", "-c", "3", "-W", "0.2", "-I", "eth0", ip]);
    let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
    let mut macs: Vec<String> = text
        .split(|c: char| !(c.is_ascii_hexdigit() || c == ':'))
        .filter(|word| word.len() == 17 && word.matches(':').count() == 5)
        .map(str::to_string)
        .collect();
    macs.sort();
    macs.dedup();
    macs
}

/// A `ping -i <interval> -c <count>` running in the background.
pub struct Ping {
    daemon: Daemon,
    pub address: String,
}

/// What a finished ping counted.
#[derive(Debug, Clone, Copy)]
pub struct PingResult {
    pub transmitted: u32,
    pub received: u32,
}

impl PingResult {
    pub fn lost(&self) -> u32 {
        self.transmitted.saturating_sub(self.received)
    }
}

impl Ping {
    /// Starts pinging `address` from `host` every `interval_s` seconds, `count` times.
    pub fn start(host: &Host, address: &str, interval_s: &str, count: u32, dir: &Path) -> Ping {
        let name = format!("ping-{}", address.replace([':', '.'], "_"));
        let count = count.to_string();
        let daemon = Daemon::spawn(
            &name,
            &host.ns,
            &[
                "ping", "-n", "-i", interval_s, "-c", &count, "-W", "1", address,
            ],
            &[],
            dir,
        );
        Ping {
            daemon,
            address: address.to_string(),
        }
    }

    /// Waits for ping to finish (at most `timeout`) and parses its summary line
    /// `N packets transmitted, M received`.
    pub fn finish(mut self, timeout: Duration) -> PingResult {
        if self.daemon.wait_exit(timeout).is_none() {
            // Ends it by its PID; SIGINT would also print the summary, SIGTERM does not.
            self.daemon.stop();
            panic!(
                "ping {} did not finish within {timeout:?}\n{}",
                self.address,
                self.daemon.log_tail(5)
            );
        }
        let text = self.daemon.log_text();
        let summary = text
            .lines()
            .find(|l| l.contains("packets transmitted"))
            .unwrap_or_else(|| panic!("no ping summary for {}:\n{text}", self.address));
        let numbers: Vec<u32> = summary
            .split(',')
            .filter_map(|part| part.split_whitespace().next()?.parse().ok())
            .collect();
        match numbers.as_slice() {
            [transmitted, received, ..] => PingResult {
                transmitted: *transmitted,
                received: *received,
            },
            _ => panic!("cannot read ping summary {summary:?}"),
        }
    }
}
