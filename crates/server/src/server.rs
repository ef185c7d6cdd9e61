//! Starting a whole Rampart server: the dataflow engine, the coordinator and the pgwire
//! listener.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use rampart_dataflow::Engine;
use rampart_repr::ErrorLog;
use tokio::net::TcpListener;

use crate::coordinator::Coordinator;

/// How to run a server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to accept PostgreSQL connections on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Dataflow worker threads.
    pub workers: usize,
    /// Where durable state will live (reserved: checkpoints are not built yet).
    pub data_dir: Option<PathBuf>,
}

/// A running server.
pub struct ServerHandle {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The coordinator, for executing SQL in-process.
    pub coordinator: Arc<Coordinator>,
    /// The shared log of rejected input.
    pub errors: ErrorLog,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl ServerHandle {
    /// Waits until the listener stops (normally never).
    pub async fn wait(self) -> std::io::Result<()> {
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(std::io::Error::other(e)),
        }
    }
}

/// Starts the engine and the pgwire listener. Must be called inside a tokio runtime.
pub async fn start_server(config: ServerConfig) -> Result<ServerHandle, String> {
    if let Some(dir) = &config.data_dir {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create data dir {}: {e}", dir.display()))?;
    }
    let engine = Arc::new(Engine::start(config.workers)?);
    let errors = ErrorLog::new();
    let coordinator = Coordinator::new(engine, errors.clone());
    let listener = TcpListener::bind(config.listen).await.map_err(|e| {
        format!(
            "cannot listen on {}: {e} (is another server using the port? pick one with --listen)",
            config.listen
        )
    })?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let backend: Arc<dyn crate::session_api::SqlBackend> = coordinator.clone();
    let task = tokio::spawn(crate::pgwire_front::serve(listener, backend));
    Ok(ServerHandle {
        addr,
        coordinator,
        errors,
        task,
    })
}
