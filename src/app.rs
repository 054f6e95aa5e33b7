//! Wires a running pipeline: the HTTP server, the engine thread, and shutdown. The shutdown
//! signal is passed in as a future (mini-redis style) so tests can stop a pipeline too.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::engine::{self, EngineError, RunOptions, RunSummary};
use crate::metrics::{server, Metrics, Status};
use crate::pipeline::Pipeline;
use crate::query::{Limits, LiveTables, Remote, Service};

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("cannot listen on {listen} for HTTP: {source}")]
    Listen { listen: String, source: std::io::Error },
    #[error("cannot register metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("the engine thread failed: {0}")]
    Thread(String),
    #[error("the engine did not stop within the {0:?} grace period")]
    GracePeriod(Duration),
}

/// A pipeline's shared observability handles, created before it runs.
pub struct Handles {
    pub metrics: Arc<Metrics>,
    pub status: Arc<Status>,
    /// The result tables the engine publishes for `/query`.
    pub live: Arc<LiveTables>,
}

impl Handles {
    pub fn new() -> Result<Handles, AppError> {
        Ok(Handles { metrics: Arc::new(Metrics::new()?), status: Arc::new(Status::default()), live: LiveTables::new() })
    }
}

/// Runs `pipeline` until it ends or `shutdown` completes; then lets the engine finish its
/// transaction within `grace`. `on_listen` learns the HTTP address (port 0 picks one).
pub async fn run(
    pipeline: Arc<Pipeline>,
    opts: RunOptions,
    handles: Handles,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
    on_listen: impl FnOnce(SocketAddr),
) -> Result<RunSummary, AppError> {
    for w in pipeline.warnings() {
        tracing::warn!("{}", w.message);
    }
    let http = &pipeline.config().http;
    let listen = http.listen.clone();
    let limits = Limits { max_rows: http.query_max_rows, timeout: http.query_timeout.std() };
    let remote = Some(Remote::new(pipeline.config()));
    let queries: Arc<dyn server::Queries> = Arc::new(Service { live: handles.live.clone(), limits, remote });
    let (addr, serve) = server::bind(&listen, handles.metrics.clone(), handles.status.clone(), Some(queries))
        .await
        .map_err(|source| AppError::Listen { listen: listen.clone(), source })?;
    tracing::info!(%addr, "serving /metrics, /healthz, /readyz, /progress and /query on http://{addr}");
    handles.live.advertise(advertised(http.advertise.as_deref(), addr));
    on_listen(addr);
    let server = tokio::spawn(serve);
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, mut rx) = tokio::sync::oneshot::channel();
    let thread = {
        let (stop, metrics, status, live) = (stop.clone(), handles.metrics.clone(), handles.status.clone(), handles.live.clone());
        std::thread::Builder::new()
            .name("eddy-engine".into())
            .spawn(move || {
                let r = engine::run_with(pipeline, opts, stop, metrics, status, live);
                let _ = tx.send(r);
            })
            .map_err(|e| AppError::Thread(e.to_string()))?
    };
    tokio::pin!(shutdown);
    let result = tokio::select! {
        r = &mut rx => r.map_err(|e| AppError::Thread(e.to_string()))?,
        () = &mut shutdown => {
            tracing::info!("shutting down: finishing the open transaction");
            stop.store(true, Ordering::Release);
            match tokio::time::timeout(grace, &mut rx).await {
                Ok(r) => r.map_err(|e| AppError::Thread(e.to_string()))?,
                Err(_) => return Err(AppError::GracePeriod(grace)),
            }
        }
    };
    let _ = thread.join();
    server.abort();
    Ok(result?)
}

/// The address other instances reach this one's HTTP server at: `http.advertise`, else the
/// bound address, with the host's name in place of an unspecified address (0.0.0.0).
fn advertised(configured: Option<&str>, bound: SocketAddr) -> String {
    if let Some(a) = configured {
        return a.to_string();
    }
    if bound.ip().is_unspecified() {
        let host = std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "localhost".into());
        return format!("{host}:{}", bound.port());
    }
    bound.to_string()
}

/// Completes on SIGINT or SIGTERM.
pub async fn signals() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
