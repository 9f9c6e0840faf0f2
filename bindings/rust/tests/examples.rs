//! The examples, run as their users would: `poll_job` serves a file once
//! over TCP while it steps a `Job` with poll(2).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::*;

/// `cargo test` builds the examples next to the test binaries (target/<profile>/examples);
/// `cargo test --test examples` alone does not rebuild them.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap(); // target/<profile>/deps/examples-<hash>
    exe.parent().unwrap().parent().unwrap().join("examples").join(name)
}

#[test]
fn poll_job_serves_a_file_byte_for_byte() {
    let data = pattern(3 * 1024 * 1024 + 5);
    let file = TempFile::with(&data);
    let mut child = Command::new(example("poll_job"))
        .arg(file.path())
        .arg("127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the poll_job example was built by cargo test");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().strip_prefix("listening on ").expect("the example prints its address");

    let mut conn = TcpStream::connect(addr).unwrap();
    conn.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut response = Vec::new();
    conn.read_to_end(&mut response).unwrap();
    let status = child.wait().unwrap();
    let mut log = String::new();
    child.stderr.take().unwrap().read_to_string(&mut log).unwrap();
    assert!(status.success(), "poll_job failed: {log}");

    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", data.len());
    assert_eq!(&response[..head.len()], head.as_bytes());
    assert!(response[head.len()..] == data[..], "the body is the file");
    assert!(log.contains(&format!("sent {} body bytes", data.len())), "{log}");
}
