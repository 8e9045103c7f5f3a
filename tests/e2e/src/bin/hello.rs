//! `e2e-hello <name> [port]`: what a Pod behind the load balancer is in the end-to-end test.
//! Listens on `[::]:<port>` (default 80; dual-stack, so IPv4 clients are served too) and
//! answers every connection with `You've hit <name>\n`, so a client learns which node the
//! load-balancer address led it to.

#![forbid(unsafe_code)]

use std::io::Write;
use std::net::TcpListener;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(name) = args.next() else {
        eprintln!("usage: e2e-hello <name> [port]");
        std::process::exit(2);
    };
    let port = args.next().unwrap_or_else(|| "80".to_string());
    let listener = match TcpListener::bind(format!("[::]:{port}")) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("e2e-hello {name}: cannot listen on [::]:{port}: {e}");
            std::process::exit(1);
        }
    };
    let greeting = format!("You've hit {name}\n");
    // A failed accept or a client that hangs up early is its own business; keep serving.
    for mut stream in listener.incoming().flatten() {
        let _ = stream.write_all(greeting.as_bytes());
    }
}
