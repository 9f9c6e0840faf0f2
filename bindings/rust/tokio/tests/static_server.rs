//! examples/tokio_static.rs as a black box: GET, HEAD, one range, 416,
//! 404, keep-alive (several responses on one connection).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use common::*;

struct Server(Child, String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(root: &std::path::Path) -> Server {
    // cargo test builds the examples next to the test binaries' directory.
    let exe = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join("examples/tokio_static");
    let mut child = Command::new(&exe).arg(root).arg("127.0.0.1:0").stdout(Stdio::piped()).spawn().expect("run the example");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().strip_prefix("listening on ").expect("address line").to_string();
    Server(child, addr)
}

/// Reads one response: (status line, headers lower-cased, body).
fn response(r: &mut BufReader<TcpStream>, head_only: bool) -> (String, Vec<(String, String)>, Vec<u8>) {
    let mut status = String::new();
    r.read_line(&mut status).unwrap();
    let mut headers = Vec::new();
    loop {
        let mut l = String::new();
        r.read_line(&mut l).unwrap();
        let l = l.trim_end();
        if l.is_empty() {
            break;
        }
        let (n, v) = l.split_once(':').unwrap();
        headers.push((n.to_ascii_lowercase(), v.trim().to_string()));
    }
    let len: usize = headers.iter().find(|(n, _)| n == "content-length").unwrap().1.parse().unwrap();
    let mut body = vec![0u8; if head_only { 0 } else { len }];
    r.read_exact(&mut body).unwrap();
    (status.trim_end().to_string(), headers, body)
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

#[test]
fn serves_get_head_ranges_with_keep_alive() {
    let dir = std::env::temp_dir().join(format!("evsendfile-tokio-static-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let data = pattern(300_000);
    std::fs::write(dir.join("f.bin"), &data).unwrap();
    std::fs::write(dir.join("index.html"), b"<p>hi</p>").unwrap();
    let server = start(&dir);

    let sock = TcpStream::connect(&server.1).unwrap();
    sock.set_read_timeout(Some(GUARD)).unwrap();
    let mut w = sock.try_clone().unwrap();
    let mut r = BufReader::new(sock);
    let requests = "GET /f.bin HTTP/1.1\r\nHost: x\r\n\r\n\
                    HEAD /f.bin HTTP/1.1\r\nHost: x\r\n\r\n\
                    GET /f.bin HTTP/1.1\r\nRange: bytes=1000-1999\r\n\r\n\
                    GET /f.bin HTTP/1.1\r\nRange: bytes=-10\r\n\r\n\
                    GET /f.bin HTTP/1.1\r\nRange: bytes=299990-\r\n\r\n\
                    GET /f.bin HTTP/1.1\r\nRange: bytes=0-1,5-6\r\n\r\n\
                    GET /f.bin HTTP/1.1\r\nRange: bytes=300000-\r\n\r\n\
                    GET /missing HTTP/1.1\r\n\r\n\
                    GET / HTTP/1.1\r\nConnection: close\r\n\r\n";
    w.write_all(requests.as_bytes()).unwrap(); // pipelined, on one connection

    let (s, h, b) = response(&mut r, false);
    assert_eq!(s, "HTTP/1.1 200 OK");
    assert!(b == data);
    assert_eq!(header(&h, "accept-ranges"), Some("bytes"));
    let (s, h, b) = response(&mut r, true);
    assert_eq!((s.as_str(), header(&h, "content-length"), b.len()), ("HTTP/1.1 200 OK", Some("300000"), 0));
    let (s, h, b) = response(&mut r, false);
    assert_eq!(s, "HTTP/1.1 206 Partial Content");
    assert_eq!(header(&h, "content-range"), Some("bytes 1000-1999/300000"));
    assert!(b == data[1000..2000]);
    let (_, h, b) = response(&mut r, false);
    assert_eq!(header(&h, "content-range"), Some("bytes 299990-299999/300000"));
    assert!(b == data[299_990..]);
    let (_, _, b) = response(&mut r, false);
    assert!(b == data[299_990..]);
    let (s, _, b) = response(&mut r, false);
    assert_eq!(s, "HTTP/1.1 200 OK", "several ranges: the whole file");
    assert_eq!(b.len(), data.len());
    let (s, h, _) = response(&mut r, false);
    assert_eq!(s, "HTTP/1.1 416 Range Not Satisfiable");
    assert_eq!(header(&h, "content-range"), Some("bytes */300000"));
    let (s, _, _) = response(&mut r, false);
    assert_eq!(s, "HTTP/1.1 404 Not Found");
    let (s, h, b) = response(&mut r, false);
    assert_eq!((s.as_str(), b.as_slice()), ("HTTP/1.1 200 OK", &b"<p>hi</p>"[..]));
    assert_eq!(header(&h, "connection"), Some("close"));
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "the server closed after Connection: close");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
