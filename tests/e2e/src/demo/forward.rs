//! kubectl from the host: test-apiserver listens on 127.0.0.1 inside the control-plane
//! namespace, so `ferrolb-demo` listens on 127.0.0.1 of the host and relays each connection
//! to it, and writes a kubeconfig for that port. A relay thread enters the namespace only to
//! connect (a socket keeps the namespace it was made in); copying needs no namespace.

use std::io::copy;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;

/// Starts relaying a host port to `127.0.0.1:<target_port>` in namespace `ns`; returns the
/// host port. The relay lives as long as the process.
pub fn relay_to_namespace(ns: &str, target_port: u16) -> Result<u16, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot listen on 127.0.0.1: {e}"))?;
    let port = listener
        .local_addr()
        .map_err(|e| format!("no local address: {e}"))?
        .port();
    let ns_path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let ns_path = ns_path.clone();
            std::thread::spawn(move || {
                if let Err(e) = relay(client, &ns_path, target_port) {
                    eprintln!("ferrolb-demo: kubectl relay: {e}");
                }
            });
        }
    });
    Ok(port)
}

fn relay(client: TcpStream, ns_path: &str, port: u16) -> Result<(), String> {
    let ns = std::fs::File::open(ns_path).map_err(|e| format!("open {ns_path}: {e}"))?;
    nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("setns {ns_path}: {e}"))?;
    let server = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .map_err(|e| format!("connect to the API server: {e}"))?;
    let (mut client_read, mut server_write) = (
        client.try_clone().map_err(|e| e.to_string())?,
        server.try_clone().map_err(|e| e.to_string())?,
    );
    let upstream = std::thread::spawn(move || {
        let _ = copy(&mut client_read, &mut server_write);
        let _ = server_write.shutdown(Shutdown::Write);
    });
    let (mut server_read, mut client_write) = (server, client);
    let _ = copy(&mut server_read, &mut client_write);
    let _ = client_write.shutdown(Shutdown::Write);
    let _ = upstream.join();
    Ok(())
}

/// Writes `to`: the kubeconfig at `from` with its server's port replaced by `port`.
pub fn rewrite_kubeconfig(from: &Path, to: &Path, port: u16) -> Result<(), String> {
    let text = std::fs::read_to_string(from)
        .map_err(|e| format!("cannot read {}: {e}", from.display()))?;
    let rewritten: Vec<String> = text
        .lines()
        .map(|line| match line.split_once("server:") {
            Some((indent, _)) => format!("{indent}server: http://127.0.0.1:{port}"),
            None => line.to_string(),
        })
        .collect();
    std::fs::write(to, rewritten.join("\n") + "\n")
        .map_err(|e| format!("cannot write {}: {e}", to.display()))
}
