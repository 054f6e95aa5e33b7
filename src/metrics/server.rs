//! A minimal HTTP/1.1 server for the four observability endpoints. GET only, one request per
//! connection; enough for Prometheus, Kubernetes probes and curl, with no web framework.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{Metrics, Status};

/// Binds `listen` (port 0 picks one) and returns the bound address and the serving future.
pub async fn bind(
    listen: &str,
    metrics: Arc<Metrics>,
    status: Arc<Status>,
) -> std::io::Result<(SocketAddr, impl std::future::Future<Output = ()>)> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let serve = async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let (m, s) = (metrics.clone(), status.clone());
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(10), handle(stream, m, s)).await;
            });
        }
    };
    Ok((addr, serve))
}

async fn handle(mut stream: TcpStream, metrics: Arc<Metrics>, status: Arc<Status>) -> std::io::Result<()> {
    let mut buf = vec![0u8; 8192];
    let mut len = 0;
    // Read until the end of the request head.
    loop {
        let n = stream.read(&mut buf[len..]).await?;
        if n == 0 {
            return Ok(());
        }
        len += n;
        if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") || len == buf.len() {
            break;
        }
    }
    let head = String::from_utf8_lossy(&buf[..len]);
    let mut parts = head.lines().next().unwrap_or("").split_whitespace();
    let method = parts.next().unwrap_or("");
    let path = parts.next().unwrap_or("/").split('?').next().unwrap_or("/");
    let (code, content_type, body) = if method != "GET" && method != "HEAD" {
        (405, "text/plain", "only GET is supported\n".to_string())
    } else {
        route(path, &metrics, &status)
    };
    let reason = match code {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    let head =
        format!("HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    stream.write_all(head.as_bytes()).await?;
    if method != "HEAD" {
        stream.write_all(body.as_bytes()).await?;
    }
    stream.shutdown().await
}

fn route(path: &str, metrics: &Metrics, status: &Status) -> (u16, &'static str, String) {
    match path {
        "/metrics" => {
            metrics.ready.set(i64::from(status.is_ready()));
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
            metrics.refresh_watermark_delays(now);
            (200, "text/plain; version=0.0.4; charset=utf-8", metrics.render())
        }
        "/healthz" => {
            if status.is_stopped() {
                (503, "text/plain", "stopped\n".into())
            } else {
                (200, "text/plain", "ok\n".into())
            }
        }
        "/readyz" => {
            if status.is_ready() {
                (200, "text/plain", "ready\n".into())
            } else if let Some(cause) = status.recovering() {
                (503, "text/plain", format!("not ready: recovering in-process from {cause}\n"))
            } else {
                (503, "text/plain", "not ready: joining the group or restoring state\n".into())
            }
        }
        "/progress" => {
            let body = status.progress.lock().map(|p| serde_json::to_string_pretty(&*p).unwrap_or_default()).unwrap_or_default();
            (200, "application/json", body)
        }
        _ => (404, "text/plain", "not found; try /metrics, /healthz, /readyz or /progress\n".into()),
    }
}
