//! A minimal HTTP/1.1 server for the four observability endpoints and `/query`. GET only, one
//! request per connection; enough for Prometheus, Kubernetes probes and curl, with no web
//! framework. `/query` is answered by whatever implements [`Queries`] (the query module, above
//! this one), on a blocking thread so that a long query holds up no other request.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{Metrics, Status};

/// One HTTP answer.
pub struct Reply {
    pub code: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Reply {
    /// An error as JSON: `{"error": "..."}`.
    pub fn error(code: u16, message: String) -> Reply {
        Reply { code, content_type: "application/json", body: format!("{}\n", serde_json::json!({ "error": message })) }
    }
}

/// Answers `/query`: `params` is the raw query string, `accept_csv` whether the client asked
/// for `text/csv`.
pub trait Queries: Send + Sync {
    fn query(&self, params: &str, accept_csv: bool) -> Reply;
}

/// Binds `listen` (port 0 picks one) and returns the bound address and the serving future.
pub async fn bind(
    listen: &str,
    metrics: Arc<Metrics>,
    status: Arc<Status>,
    queries: Option<Arc<dyn Queries>>,
) -> std::io::Result<(SocketAddr, impl std::future::Future<Output = ()>)> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let serve = async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let (m, s, q) = (metrics.clone(), status.clone(), queries.clone());
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(30), handle(stream, m, s, q)).await;
            });
        }
    };
    Ok((addr, serve))
}

async fn handle(
    mut stream: TcpStream,
    metrics: Arc<Metrics>,
    status: Arc<Status>,
    queries: Option<Arc<dyn Queries>>,
) -> std::io::Result<()> {
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
    let target = parts.next().unwrap_or("/");
    let (path, params) = target.split_once('?').unwrap_or((target, ""));
    let (code, content_type, body) = if method != "GET" && method != "HEAD" {
        (405, "text/plain", "only GET is supported\n".to_string())
    } else if path == "/query" {
        let accept_csv = head.lines().any(|l| {
            l.split_once(':').is_some_and(|(name, value)| name.trim().eq_ignore_ascii_case("accept") && value.contains("text/csv"))
        });
        let reply = match queries {
            None => Reply::error(404, "this server answers no queries".into()),
            Some(q) => {
                let params = params.to_string();
                tokio::task::spawn_blocking(move || q.query(&params, accept_csv))
                    .await
                    .unwrap_or_else(|e| Reply::error(500, format!("the query failed: {e}")))
            }
        };
        (reply.code, reply.content_type, reply.body)
    } else {
        route(path, &metrics, &status)
    };
    let reason = match code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        422 => "Unprocessable Content",
        500 => "Internal Server Error",
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
        _ => (404, "text/plain", "not found; try /metrics, /healthz, /readyz, /progress or /query?sql=...\n".into()),
    }
}
