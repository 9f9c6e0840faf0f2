//! Throughput and CPU per GB of three ways to send a file from a tokio
//! server: `evsendfile_tokio::send_file`, `tokio::io::copy` from a
//! `tokio::fs::File`, and a `spawn_blocking` loop of sendfile(2).
//!
//!   tokio_bench FILE [ROUNDS]    (bench/tokio_bench.sh runs it)
//!
//! The peer is a child process (this binary, `sink` mode) so that the CPU
//! measured (getrusage of this process) is the server's alone.  Each
//! connection asks for a transfer with one byte and reads the answer;
//! cells are sizes x connection counts, rounds interleave the contenders
//! (order rotated per round); medians are printed with ratios to send_file.
//! 1 GiB at 64 connections sends the file once, in 64 slices of 16 MiB.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::os::raw::{c_int, c_long, c_short, c_ulong};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use evsendfile::Options;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

extern "C" {
    fn sendfile(out_fd: c_int, in_fd: c_int, offset: *mut i64, count: usize) -> isize;
    fn poll(fds: *mut PollFd, nfds: c_ulong, timeout_ms: c_int) -> c_int;
    fn getrusage(who: c_int, usage: *mut [c_long; 18]) -> c_int;
}
#[repr(C)]
struct PollFd {
    fd: c_int,
    events: c_short,
    revents: c_short,
}

const CONTENDERS: [&str; 3] = ["send_file", "io::copy", "spawn_blocking"];
const SIZES: [(u64, &str); 3] = [(16 << 10, "16 KiB"), (1 << 20, "1 MiB"), (1 << 30, "1 GiB")];
const CONNS: [usize; 2] = [1, 64];
/// Bytes moved per cell (at least one transfer per connection).
const CELL_BYTES: u64 = 512 << 20;

fn cpu_seconds() -> f64 {
    let mut u = [0 as c_long; 18];
    // SAFETY: struct rusage is 18 longs on 64-bit Linux; RUSAGE_SELF = 0.
    unsafe { getrusage(0, &mut u) };
    (u[0] + u[2]) as f64 + (u[1] + u[3]) as f64 / 1e6
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("sink") {
        return sink(args[2].parse().unwrap());
    }
    let path = args.get(1).expect("usage: tokio_bench FILE [ROUNDS]").clone();
    let rounds: usize = args.get(2).map(|r| r.parse().unwrap()).unwrap_or(3);
    let file_len = std::fs::metadata(&path).unwrap().len();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(bench(path, file_len, rounds));
}

/// (size, conns) -> (transfers per connection, bytes per transfer, slice: each connection its own part)
fn plan(size: u64, conns: usize) -> (u64, u64, bool) {
    if size >= 1 << 30 && conns > 1 {
        return (1, size / conns as u64, true);
    }
    ((CELL_BYTES / (size * conns as u64)).max(1), size, false)
}

async fn bench(path: String, file_len: u64, rounds: usize) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["sink", &addr.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut to_sink = child.stdin.take().unwrap();
    let mut from_sink = BufReader::new(child.stdout.take().unwrap());
    let file = Arc::new(std::fs::File::open(&path).unwrap());
    // results[cell][contender] = [(GB/s, CPU s/GB)]
    // BENCH_SIZE=1073741824 / BENCH_CONNS=1: one cell only (for experiments).
    let only = |var: &str| std::env::var(var).ok().and_then(|v| v.parse::<u64>().ok());
    let (only_size, only_conns) = (only("BENCH_SIZE"), only("BENCH_CONNS"));
    let cells: Vec<(u64, &str, usize)> = SIZES
        .iter()
        .filter(|s| s.0 <= file_len && only_size.is_none_or(|o| o == s.0))
        .flat_map(|&(s, n)| CONNS.iter().filter(move |&&c| only_conns.is_none_or(|o| o == c as u64)).map(move |&c| (s, n, c)))
        .collect();
    let mut results = vec![vec![Vec::new(); CONTENDERS.len()]; cells.len()];
    for round in 0..rounds {
        for (ci, &(size, _, conns)) in cells.iter().enumerate() {
            for k in 0..CONTENDERS.len() {
                let who = (k + round) % CONTENDERS.len();
                let (transfers, bytes, slice) = plan(size, conns);
                let cpu0 = cpu_seconds();
                let t0 = Instant::now();
                writeln!(to_sink, "{conns} {transfers} {bytes}").unwrap();
                let mut tasks = Vec::new();
                for i in 0..conns {
                    let (stream, _) = listener.accept().await.unwrap();
                    stream.set_nodelay(true).unwrap();
                    let off = if slice { i as u64 * bytes } else { 0 };
                    let (file, path) = (file.clone(), path.clone());
                    tasks.push(tokio::spawn(serve(who, stream, file, path, off, bytes, transfers)));
                }
                for t in tasks {
                    t.await.unwrap();
                }
                let mut line = String::new();
                from_sink = tokio::task::spawn_blocking(move || {
                    from_sink.read_line(&mut line).unwrap();
                    from_sink
                })
                .await
                .unwrap();
                let wall = t0.elapsed().as_secs_f64();
                let cpu = cpu_seconds() - cpu0;
                let gb = (conns as u64 * transfers * bytes) as f64 / 1e9;
                results[ci][who].push((gb / wall, cpu / gb));
            }
        }
        eprintln!("round {} of {rounds} done", round + 1);
    }
    drop(to_sink);
    let _ = child.wait();
    println!("| size | conns | contender | GB/s (median) | CPU s/GB (median) | GB/s vs send_file | CPU/GB vs send_file |");
    println!("|---|---|---|---|---|---|---|");
    for (ci, &(_, name, conns)) in cells.iter().enumerate() {
        let med: Vec<(f64, f64)> = results[ci]
            .iter()
            .map(|v| (median(v.iter().map(|x| x.0).collect()), median(v.iter().map(|x| x.1).collect())))
            .collect();
        for (k, &(tput, cpu)) in med.iter().enumerate() {
            println!(
                "| {name} | {conns} | {} | {tput:.2} | {cpu:.3} | {:.2}x | {:.2}x |",
                CONTENDERS[k],
                tput / med[0].0,
                cpu / med[0].1
            );
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

async fn serve(who: usize, mut stream: TcpStream, file: Arc<std::fs::File>, path: String, off: u64, len: u64, n: u64) {
    let mut tfile = if who == 1 { Some(tokio::fs::File::open(&path).await.unwrap()) } else { None };
    let mut req = [0u8; 1];
    for _ in 0..n {
        stream.read_exact(&mut req).await.unwrap();
        match who {
            0 => {
                // EVSF_MAX_CHUNK: bytes per step before yielding (default: the library's 2 MiB).
                let chunk = std::env::var("EVSF_MAX_CHUNK").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
                let opts = Options::new().max_chunk(chunk);
                let sent = evsendfile_tokio::send_file(&stream, &file, off, Some(len), &opts).await.unwrap();
                assert_eq!(sent, len);
            }
            1 => {
                let f = tfile.as_mut().unwrap();
                f.seek(std::io::SeekFrom::Start(off)).await.unwrap();
                let sent = tokio::io::copy(&mut f.take(len), &mut stream).await.unwrap();
                assert_eq!(sent, len);
            }
            _ => {
                let (sock, src) = (stream.as_raw_fd(), file.as_raw_fd());
                tokio::task::spawn_blocking(move || blocking_sendfile(sock, src, off, len)).await.unwrap();
            }
        }
    }
    stream.flush().await.unwrap();
}

/// sendfile until `len` bytes are out; the socket is tokio's (non-blocking): poll(2) on EAGAIN.
fn blocking_sendfile(sock: c_int, src: c_int, off: u64, len: u64) {
    let mut offset = off as i64;
    let end = (off + len) as i64;
    while offset < end {
        let want = ((end - offset) as usize).min(0x7fff_f000);
        // SAFETY: both descriptors stay open: the awaiting task keeps the stream and the file alive.
        let n = unsafe { sendfile(sock, src, &mut offset, want) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            match e.kind() {
                std::io::ErrorKind::WouldBlock => {
                    let mut p = PollFd { fd: sock, events: 0x4, revents: 0 };
                    // SAFETY: one valid pollfd.
                    unsafe { poll(&mut p, 1, -1) };
                }
                std::io::ErrorKind::Interrupted => {}
                _ => panic!("sendfile: {e}"),
            }
        } else if n == 0 {
            panic!("sendfile: file shorter than expected");
        }
    }
}

/// The peer: for each command line "conns transfers bytes", opens `conns`
/// connections, each asking `transfers` times for `bytes` bytes; prints "done".
fn sink(addr: SocketAddr) {
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let line = line.unwrap();
        let v: Vec<u64> = line.split_whitespace().map(|x| x.parse().unwrap()).collect();
        let (conns, transfers, bytes) = (v[0] as usize, v[1], v[2]);
        let socks: Vec<_> = (0..conns).map(|_| std::net::TcpStream::connect(addr).unwrap()).collect();
        let threads: Vec<_> = socks
            .into_iter()
            .map(|mut s| {
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 256 * 1024];
                    for _ in 0..transfers {
                        s.write_all(b"g").unwrap();
                        let mut left = bytes;
                        while left > 0 {
                            let want = (left as usize).min(buf.len());
                            let n = s.read(&mut buf[..want]).unwrap();
                            assert!(n > 0, "server closed early");
                            left -= n as u64;
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        println!("done");
    }
}
