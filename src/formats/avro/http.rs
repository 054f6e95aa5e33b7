//! A tiny blocking HTTP/1.1 client over `std::net::TcpStream` for the Schema Registry: one
//! request per connection (`Connection: close`), Content-Length or chunked bodies, responses
//! capped at 16 MiB, timeouts on connect, read and write. Plain HTTP only; std only.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

const MAX_RESPONSE: usize = 16 << 20;
const TIMEOUT: Duration = Duration::from_secs(10);

/// A response: status code and body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// `http://host:port` split into the authority and a path prefix.
#[derive(Debug, Clone)]
pub struct BaseUrl {
    host_port: String,
    prefix: String,
}

impl BaseUrl {
    pub fn parse(url: &str) -> Result<BaseUrl, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| format!("\"{url}\" is not an http:// URL (https is not supported)"))?;
        let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
        if authority.is_empty() {
            return Err(format!("\"{url}\" has no host"));
        }
        let host_port = if authority.contains(':') { authority.to_string() } else { format!("{authority}:80") };
        let prefix = path.trim_end_matches('/');
        Ok(BaseUrl { host_port, prefix: if prefix.is_empty() { String::new() } else { format!("/{prefix}") } })
    }
}

/// Sends one request; `body` is JSON when present.
pub fn request(base: &BaseUrl, method: &str, path: &str, body: Option<&str>) -> Result<Response, String> {
    let addr = base
        .host_port
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", base.host_port))?
        .next()
        .ok_or_else(|| format!("{} has no address", base.host_port))?;
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| format!("cannot connect to {}: {e}", base.host_port))?;
    stream.set_read_timeout(Some(TIMEOUT)).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(|e| e.to_string())?;
    let body = body.unwrap_or("");
    let head = format!(
        "{method} {}{path} HTTP/1.1\r\nHost: {}\r\nAccept: application/vnd.schemaregistry.v1+json, application/json\r\n\
         Content-Type: application/vnd.schemaregistry.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        base.prefix,
        base.host_port,
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body.as_bytes()))
        .map_err(|e| format!("cannot send to {}: {e}", base.host_port))?;
    let mut raw = Vec::new();
    stream.take(MAX_RESPONSE as u64 + 1).read_to_end(&mut raw).map_err(|e| format!("cannot read from {}: {e}", base.host_port))?;
    if raw.len() > MAX_RESPONSE {
        return Err(format!("the response from {} exceeds 16 MiB", base.host_port));
    }
    parse_response(&raw)
}

/// Parses a whole HTTP/1.1 response.
pub fn parse_response(raw: &[u8]) -> Result<Response, String> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or("an HTTP response without a header end")?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| "HTTP headers are not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status: u16 =
        status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| format!("bad status line \"{status_line}\""))?;
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((k, v)) = line.split_once(':') else { continue };
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
        if k == "content-length" {
            length = v.parse::<usize>().ok();
        } else if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
            chunked = true;
        }
    }
    let rest = &raw[end + 4..];
    let body = if chunked {
        dechunk(rest)?
    } else {
        match length {
            Some(n) if n <= rest.len() => rest[..n].to_vec(),
            Some(_) => return Err("an HTTP body shorter than its Content-Length".into()),
            None => rest.to_vec(),
        }
    };
    Ok(Response { status, body })
}

fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = rest.windows(2).position(|w| w == b"\r\n").ok_or("a chunk without a size line")?;
        let size_text = std::str::from_utf8(&rest[..eol]).map_err(|_| "a bad chunk size")?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16).map_err(|_| "a bad chunk size")?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if rest.len() < size {
            return Err("a chunk shorter than its size".into());
        }
        out.extend_from_slice(&rest[..size]);
        rest = rest.get(size + 2..).unwrap_or(&[]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_length_and_chunked_bodies() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n{\"id\":1}").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, b"{\"id\":1".as_slice()));
        let r = parse_response(b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3;x=y\r\n:1}\r\n0\r\n\r\n")
            .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (404, b"{\"a\":1}".as_slice()));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
        assert!(parse_response(b"garbage\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nff\r\nab").is_err());
    }

    #[test]
    fn base_urls() {
        let b = BaseUrl::parse("http://localhost:8081/").unwrap();
        assert_eq!((b.host_port.as_str(), b.prefix.as_str()), ("localhost:8081", ""));
        let b = BaseUrl::parse("http://registry/api/v1").unwrap();
        assert_eq!((b.host_port.as_str(), b.prefix.as_str()), ("registry:80", "/api/v1"));
        assert!(BaseUrl::parse("https://x").is_err());
    }
}
