//! `e2e-hello <name> [port]`: what a Pod behind the load balancer is in the end-to-end test
//! and the demo (kubia's part in the OpenELB walkthroughs). Listens on `[::]:<port>` (default
//! 80; dual-stack, so IPv4 clients are served too) and answers every connection with an
//! HTTP/1.0 response whose body is `You've hit <name>\n`, so a client — `curl`, or the
//! harness's bare TCP probe that sends nothing — learns which Pod the load-balancer address
//! led it to.
//!
//! The response goes out as soon as the connection is accepted (a probe that sends nothing
//! must not wait); then the request, if any, is read and dropped until the client closes, so
//! closing never resets a connection whose request was not read yet.

#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::Duration;

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
    let body = format!("You've hit {name}\n");
    let response = format!(
        "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    // A failed accept or a client that hangs up early is its own business; keep serving.
    for stream in listener.incoming().flatten() {
        let response = response.clone();
        std::thread::spawn(move || answer(stream, response.as_bytes()));
    }
}

/// Sends the response, half-closes, and drains the request for at most two seconds.
fn answer(mut stream: TcpStream, response: &[u8]) {
    if stream.write_all(response).is_err() {
        return;
    }
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut sink = [0u8; 1024];
    while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
}
