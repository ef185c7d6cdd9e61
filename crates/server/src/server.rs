//! Starting a whole Rampart server: the dataflow engine, the coordinator and the pgwire
//! listener.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rampart_dataflow::Engine;
use rampart_repr::{Error, ErrorLog};
use tokio::net::TcpListener;

use rampart_storage::{io_error, CatalogLog, DataDir, ErrorJournal, RoundLog};

use crate::coordinator::Coordinator;
use crate::durability::Storage;

/// How to run a server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to accept PostgreSQL connections on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Dataflow worker threads.
    pub workers: usize,
    /// Where durable state lives: the catalog, table contents and sink progress. With
    /// `None`, nothing survives a restart.
    pub data_dir: Option<PathBuf>,
    /// How often sinks make their output and progress durable.
    pub checkpoint_interval: Duration,
}

impl ServerConfig {
    /// A server on `listen` with `workers` workers and no data directory.
    pub fn ephemeral(listen: SocketAddr, workers: usize) -> Self {
        ServerConfig {
            listen,
            workers,
            data_dir: None,
            checkpoint_interval: DEFAULT_CHECKPOINT_INTERVAL,
        }
    }
}

/// Default for [`ServerConfig::checkpoint_interval`].
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

/// A running server.
pub struct ServerHandle {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The coordinator, for executing SQL in-process.
    pub coordinator: Arc<Coordinator>,
    /// The shared log of rejected input.
    pub errors: ErrorLog,
    /// Objects in the data directory's catalog that could not be restored, with why.
    pub restore_failures: Vec<String>,
    /// How many objects were restored from the data directory.
    pub restored: usize,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    /// The checkpoint thread, with a data directory.
    checkpointer: Option<Arc<crate::durability::checkpoint::Checkpointer>>,
}

impl ServerHandle {
    /// Stops the server (SIGTERM, SIGINT): closes the listener, so no new connection is
    /// accepted, then writes a last checkpoint (views and the rejected and late input not
    /// saved yet). Statements still running end with the process. A restart on the same
    /// data directory resumes from here, as it would after a kill.
    pub async fn shutdown(self) {
        self.task.abort();
        if let Some(checkpointer) = self.checkpointer {
            let started = std::time::Instant::now();
            let done = tokio::task::spawn_blocking(move || checkpointer.final_checkpoint()).await;
            match done {
                Ok(()) => tracing::info!(ms = started.elapsed().as_millis() as u64, "last checkpoint written"),
                Err(e) => tracing::error!("the last checkpoint failed: {e}"),
            }
        }
    }
}

/// Starts the engine and the pgwire listener. Must be called inside a tokio runtime. A data
/// directory another server holds is `55006`; one that cannot be read, or a port that
/// cannot be listened on, `58030` naming the file or the address.
pub async fn start_server(config: ServerConfig) -> Result<ServerHandle, Error> {
    let mut stored = Vec::new();
    // The checkpointer the stop takes its last checkpoint with (without a data directory,
    // none).
    let mut stop_checkpointer = None;
    let errors = ErrorLog::new();
    let late = ErrorLog::new();
    let storage = match &config.data_dir {
        None => None,
        Some(dir) => {
            let data_dir = DataDir::open(dir)?;
            let (catalog, objects) = CatalogLog::open(&data_dir.catalog_path())
                .map_err(|e| io_error(format!("cannot read the catalog in {}", dir.display()), e))?;
            stored = objects;
            let (journal, saved) = ErrorJournal::open(&data_dir.errors_path())
                .map_err(|e| io_error(format!("cannot read the saved source errors in {}", dir.display()), e))?;
            errors.restore(saved);
            let (late_journal, late_saved) = ErrorJournal::open(&data_dir.late_events_path())
                .map_err(|e| io_error(format!("cannot read the saved late events in {}", dir.display()), e))?;
            late.restore(late_saved);
            let rounds = RoundLog::open(&data_dir.rounds_path())
                .map_err(|e| io_error(format!("cannot read the checkpoint rounds in {}", dir.display()), e))?;
            let checkpointer = crate::durability::checkpoint::Checkpointer::start(config.checkpoint_interval, rounds);
            stop_checkpointer = Some(checkpointer.clone());
            checkpointer.save_errors(errors.clone(), journal);
            checkpointer.save_errors(late.clone(), late_journal);
            Some(Storage {
                dir: data_dir,
                catalog,
                tables: Default::default(),
                sync_every: config.checkpoint_interval,
                checkpointer,
                rebuilt: Default::default(),
                restore: Default::default(),
            })
        }
    };
    let engine = Arc::new(Engine::start(config.workers)?);
    let coordinator = Coordinator::with_storage(engine, errors.clone(), late, storage);
    let restored = stored.len();
    let restore_failures = if stored.is_empty() {
        vec![]
    } else {
        tracing::info!(objects = restored, "restoring the catalog from the data directory");
        let failures = coordinator.restore(stored).await;
        for f in &failures {
            tracing::error!("{f}");
        }
        failures
    };
    let restored = restored - restore_failures.len();
    let listener = TcpListener::bind(config.listen).await.map_err(|e| {
        Error::io(
            format!(
                "cannot listen on {}: {e} (is another server using the port? pick one with --listen)",
                config.listen
            ),
            e,
        )
    })?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io(format!("cannot read the address listened on: {e}"), e))?;
    if let Some(warning) = exposure_warning(&addr) {
        tracing::warn!("{warning}");
    }
    let backend: Arc<dyn rampart_pgwire::SqlBackend> = coordinator.clone();
    let task = tokio::spawn(rampart_pgwire::serve(listener, backend));
    Ok(ServerHandle {
        addr,
        coordinator,
        errors,
        restore_failures,
        restored,
        task,
        checkpointer: stop_checkpointer,
    })
}

/// The warning for a listen address other hosts can reach: the server authenticates no one
/// and has no TLS yet, so anyone who reaches the port controls it.
pub fn exposure_warning(addr: &SocketAddr) -> Option<String> {
    (!addr.ip().is_loopback()).then(|| {
        format!(
            "listening on {addr}, reachable from other hosts, with no authentication and no TLS: \
             anyone who reaches this port controls the server and can read any file it can; \
             listen on 127.0.0.1 and reach it through an SSH tunnel or a TLS proxy (docs/security.md)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_addresses_other_hosts_can_reach_are_warned_about() {
        for quiet in ["127.0.0.1:4566", "[::1]:4566"] {
            assert_eq!(exposure_warning(&quiet.parse().unwrap()), None, "{quiet}");
        }
        for loud in ["0.0.0.0:4566", "10.1.2.3:4566", "[::]:4566"] {
            let w = exposure_warning(&loud.parse().unwrap()).expect(loud);
            assert!(w.contains("no authentication") && w.contains("docs/security.md"), "{w}");
        }
    }
}
