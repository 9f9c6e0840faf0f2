//! A tiny HTTP/1.1 static file server on tokio: keep-alive, GET and HEAD,
//! one byte range (`Range: bytes=a-b`, `a-`, `-n`), the response head sent
//! by `send_file` as `opts.head` (one packet with a small body).
//!
//!   cargo-debian run --offline --release --example tokio_static -- ROOT [ADDR]
//! ADDR defaults to 127.0.0.1:8080 (port 0: any); the first line on stdout is
//! "listening on IP:PORT".  A demo, not a hardened server: no percent-decoding,
//! request bodies are not read (a request with one closes the connection).

use std::fs::File;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use evsendfile::{Error, Options};
use evsendfile_tokio::send_file;
use tokio::net::{TcpListener, TcpStream};

#[tokio::main]
async fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let root = Arc::new(PathBuf::from(args.next().unwrap_or_else(|| ".".into())));
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8080".into());
    let listener = TcpListener::bind(&addr).await?;
    println!("listening on {}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let root = root.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            if let Err(e) = serve(stream, &root).await {
                if !matches!(e.kind(), io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset) {
                    eprintln!("connection: {e}");
                }
            }
        });
    }
}

struct Request {
    head_only: bool,
    path: Option<PathBuf>,
    range: Option<String>,
    keep_alive: bool,
    bad: Option<&'static str>,
}

async fn serve(stream: TcpStream, root: &Path) -> io::Result<()> {
    let mut buf = Vec::with_capacity(4096);
    loop {
        let Some(end) = read_head(&stream, &mut buf).await? else { return Ok(()) };
        let req = parse(&buf[..end]);
        buf.drain(..end);
        let keep = req.keep_alive && req.bad.is_none();
        respond(&stream, root, &req, keep).await?;
        if !keep {
            return Ok(());
        }
    }
}

/// Reads until a blank line; Some(length of the head), None on EOF.
async fn read_head(stream: &TcpStream, buf: &mut Vec<u8>) -> io::Result<Option<usize>> {
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok(Some(i + 4));
        }
        if buf.len() > 16 * 1024 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "request head too large"));
        }
        stream.readable().await?;
        let mut chunk = [0u8; 4096];
        match stream.try_read(&mut chunk) {
            Ok(0) => return Ok(None),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

fn parse(head: &[u8]) -> Request {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let mut parts = lines.next().unwrap_or("").split(' ');
    let (method, target, version) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let mut req = Request { head_only: method == "HEAD", path: None, range: None, keep_alive: version == "HTTP/1.1", bad: None };
    if method != "GET" && method != "HEAD" {
        req.bad = Some("405 Method Not Allowed");
    }
    if !version.starts_with("HTTP/1.") {
        req.bad = Some("400 Bad Request");
    }
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "connection" if value.eq_ignore_ascii_case("close") => req.keep_alive = false,
            "connection" if value.eq_ignore_ascii_case("keep-alive") => req.keep_alive = true,
            "range" => req.range = Some(value.to_string()),
            "content-length" if value != "0" => req.keep_alive = false, // the body is not read
            "transfer-encoding" => req.keep_alive = false,
            _ => {}
        }
    }
    let path = target.split(['?', '#']).next().unwrap_or("");
    let rel = Path::new(path.trim_start_matches('/'));
    if path.starts_with('/') && rel.components().all(|c| matches!(c, Component::Normal(_))) {
        req.path = Some(if path.ends_with('/') { rel.join("index.html") } else { rel.to_path_buf() });
    } else if req.bad.is_none() {
        req.bad = Some("400 Bad Request");
    }
    req
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` against `len`: Ok(None) means "ignore the
/// header" (not bytes, several ranges, malformed), Err(()) is 416.
fn byte_range(value: &str, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = value.strip_prefix("bytes=") else { return Ok(None) };
    if spec.contains(',') {
        return Ok(None); // one range only: serve the whole file
    }
    let Some((a, b)) = spec.trim().split_once('-') else { return Ok(None) };
    let (first, last) = match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(f), Ok(l)) if f <= l => (f, l.min(len.saturating_sub(1))),
        (Ok(f), Err(_)) if b.is_empty() => (f, len.saturating_sub(1)),
        (Err(_), Ok(n)) if a.is_empty() && n > 0 => (len.saturating_sub(n), len.saturating_sub(1)),
        (Err(_), Ok(0)) if a.is_empty() => return Err(()),
        _ => return Ok(None),
    };
    if first >= len {
        return Err(());
    }
    Ok(Some((first, last - first + 1)))
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" | "htm" => "text/html; charset=utf-8",
        "txt" | "md" => "text/plain; charset=utf-8",
        "css" => "text/css",
        "js" => "text/javascript",
        "json" => "application/json",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "svg" => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

async fn respond(stream: &TcpStream, root: &Path, req: &Request, keep: bool) -> io::Result<()> {
    let conn = if keep { "" } else { "Connection: close\r\n" };
    if let Some(status) = req.bad {
        return simple(stream, status, conn, req.head_only).await;
    }
    let path = root.join(req.path.as_deref().unwrap());
    let file = match File::open(&path) {
        Ok(f) if f.metadata().map(|m| m.is_file()).unwrap_or(false) => f,
        _ => return simple(stream, "404 Not Found", conn, req.head_only).await,
    };
    let len = file.metadata()?.len();
    let (status, offset, count, extra) = match req.range.as_deref().map(|r| byte_range(r, len)) {
        Some(Err(())) => {
            let head = format!("HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{len}\r\nContent-Length: 0\r\n{conn}\r\n");
            return write_all(stream, head.as_bytes()).await;
        }
        Some(Ok(Some((first, n)))) => {
            ("206 Partial Content", first, n, format!("Content-Range: bytes {first}-{}/{len}\r\n", first + n - 1))
        }
        _ => ("200 OK", 0, len, String::new()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {}\r\nContent-Length: {count}\r\nAccept-Ranges: bytes\r\n{extra}{conn}\r\n",
        content_type(&path)
    );
    let body = if req.head_only { 0 } else { count };
    match send_file(stream, &file, offset, Some(body), &Options::new().head(head.as_bytes())).await {
        Ok(_) => Ok(()),
        // The file shrank after the head promised its length: the connection cannot go on.
        Err(Error::Truncated) => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file truncated while sent")),
        Err(e) => Err(e.into()),
    }
}

async fn simple(stream: &TcpStream, status: &str, conn: &str, head_only: bool) -> io::Result<()> {
    let body = format!("{status}\n");
    let mut msg = format!("HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{conn}\r\n", body.len());
    if !head_only {
        msg.push_str(&body);
    }
    write_all(stream, msg.as_bytes()).await
}

async fn write_all(stream: &TcpStream, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        stream.writable().await?;
        match stream.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
