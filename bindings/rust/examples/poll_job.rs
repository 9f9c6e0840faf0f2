//! Drives an `evsendfile::Job` from std and poll(2), the way any non-libevent
//! reactor would: step, and on `Step::Write` wait until the socket is
//! writable.  No crates; poll is declared here (libc is not a dependency).
//!
//!   cargo run --offline --example poll_job -- FILE [ADDR]
//! serves FILE once on ADDR, default 127.0.0.1:8080 (fetch it with `curl -s 127.0.0.1:8080 | wc -c`);
//! it prints the address it listens on first (ADDR may have port 0).  tests/examples.rs runs it.

use std::io::Read;
use std::net::TcpListener;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::raw::{c_int, c_short, c_ulong};

use evsendfile::{Job, Options, Region, Step};

#[repr(C)]
struct PollFd {
    fd: c_int,
    events: c_short,
    revents: c_short,
}
extern "C" {
    fn poll(fds: *mut PollFd, nfds: c_ulong, timeout_ms: c_int) -> c_int;
}
const POLLIN: c_short = 0x1;
const POLLOUT: c_short = 0x4;

fn wait(fd: RawFd, events: c_short) -> std::io::Result<()> {
    let mut p = PollFd { fd, events, revents: 0 };
    loop {
        // SAFETY: one valid pollfd; -1: no timeout.
        if unsafe { poll(&mut p, 1, -1) } >= 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: poll_job FILE")?;
    let file = std::fs::File::open(&path)?;
    let len = file.metadata()?.len();
    let addr = std::env::args().nth(2).unwrap_or_else(|| "127.0.0.1:8080".into());
    let listener = TcpListener::bind(addr)?;
    println!("listening on {}", listener.local_addr()?);
    let (mut sock, peer) = listener.accept()?;
    let mut request = [0u8; 4096];
    let _ = sock.read(&mut request)?; // one read is enough for a demo
    sock.set_nonblocking(true)?;

    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n");
    let mut job = Job::new(sock.as_fd(), &Region::fd(&file), &Options::new().head(head.as_bytes()))?;
    let mut waits = 0;
    loop {
        match job.step()? {
            Step::Done => break,
            Step::Yield => {} // a real loop would run its other work here
            Step::Write => {
                waits += 1;
                wait(sock.as_raw_fd(), POLLOUT)?;
            }
            Step::Read | Step::Source => wait(job.wait_fd(), POLLIN)?, // a pipe's data, or a cold chunk read in
        }
    }
    eprintln!("sent {} body bytes of {path} to {peer} ({waits} waits for POLLOUT)", job.body_sent());
    Ok(())
}
