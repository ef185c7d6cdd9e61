//! The `rampart` command: `serve`, `run FILE.sql`, and `demo`.

mod alloc;
mod demo;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use rampart_server::{start_server, ServerConfig, ServerHandle};

/// Rampart: a streaming SIEM engine. SQL in, alerts out, incrementally.
#[derive(Parser)]
#[command(name = "rampart", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a server that accepts SQL over the PostgreSQL wire protocol.
    Serve(ServeArgs),
    /// Start an embedded server, execute a SQL file, and keep running until Ctrl-C.
    Run {
        /// The SQL file to execute.
        file: PathBuf,
        #[command(flatten)]
        args: ServeArgs,
    },
    /// Feed the built-in security event generator into the seed detection pipeline and
    /// show alerts as they fire.
    Demo {
        #[command(flatten)]
        args: ServeArgs,
        /// Events per second per source.
        #[arg(long, default_value_t = 300.0)]
        rate: f64,
        /// Stop after this many seconds (default: run until Ctrl-C).
        #[arg(long)]
        seconds: Option<u64>,
    },
}

#[derive(clap::Args, Clone)]
struct ServeArgs {
    /// Where durable state lives (default: ./rampart-data; the demo's own:
    /// ./rampart-demo-data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address for PostgreSQL clients.
    #[arg(long, default_value = "127.0.0.1:4566")]
    listen: SocketAddr,
    /// Dataflow worker threads (default: number of cores).
    #[arg(long)]
    workers: Option<usize>,
    /// How often sinks make their output and progress durable and snapshotted views write
    /// a checkpoint, in milliseconds.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    checkpoint_interval_ms: u64,
}

/// The data directory `serve` and `run` use unless told otherwise.
const DEFAULT_DATA_DIR: &str = "./rampart-data";

/// The demo's own data directory, so a demo never mixes with a pipeline of one's own.
const DEMO_DATA_DIR: &str = "./rampart-demo-data";

impl ServeArgs {
    /// The data directory given, or `default`.
    fn data_dir_or(&self, default: &str) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(|| PathBuf::from(default))
    }

    fn config(&self) -> ServerConfig {
        self.config_in(self.data_dir_or(DEFAULT_DATA_DIR))
    }

    fn config_in(&self, data_dir: PathBuf) -> ServerConfig {
        let workers = self
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
        ServerConfig {
            listen: self.listen,
            workers,
            data_dir: Some(data_dir),
            checkpoint_interval: std::time::Duration::from_millis(self.checkpoint_interval_ms),
        }
    }
}

/// Says what came back from the data directory.
fn report_restore(server: &rampart_server::ServerHandle, args: &ServeArgs) {
    if server.restored > 0 {
        eprintln!(
            "restored {} objects from {}; views resume from their checkpoints or replay their input",
            server.restored,
            args.data_dir_or(DEFAULT_DATA_DIR).display()
        );
    }
    for f in &server.restore_failures {
        eprintln!("warning: {f}");
    }
}

fn main() {
    alloc::tune();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "rampart=info,warn".into()),
        )
        .with_writer(std::io::stderr)
        // Colours only on a terminal: a log file or a journal gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let result = rt.block_on(async move {
        match cli.command {
            Cmd::Serve(args) => {
                let server = start_server(args.config()).await.map_err(|e| e.to_string())?;
                report_restore(&server, &args);
                eprintln!(
                    "rampart listening on {} (psql -h {} -p {} -U root -d dev)",
                    server.addr,
                    server.addr.ip(),
                    server.addr.port()
                );
                serve_until_stopped(server).await
            }
            Cmd::Run { file, args } => {
                let sql = std::fs::read_to_string(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
                let server = start_server(args.config()).await.map_err(|e| e.to_string())?;
                report_restore(&server, &args);
                for outcome in server
                    .coordinator
                    .execute_script(&sql)
                    .await
                    .map_err(|e| {
                        let mut msg = format!("{}: {e}", file.display());
                        if server.restored > 0 {
                            msg.push_str(&format!(
                                " ({} objects were restored from {}: resume them with `rampart serve --data-dir {}`, or remove the directory to start over)",
                                server.restored,
                                args.data_dir_or(DEFAULT_DATA_DIR).display(),
                                args.data_dir_or(DEFAULT_DATA_DIR).display()
                            ));
                        }
                        msg
                    })?
                {
                    for n in outcome.notices {
                        eprintln!("NOTICE: {n}");
                    }
                }
                eprintln!("executed {}; serving on {} until Ctrl-C", file.display(), server.addr);
                serve_until_stopped(server).await
            }
            Cmd::Demo { args, rate, seconds } => {
                demo::run(args.config_in(args.data_dir_or(DEMO_DATA_DIR)), rate, seconds).await
            }
        }
    });
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// Serves until SIGTERM (how systemd and Kubernetes stop a service) or SIGINT (Ctrl-C),
/// then stops gracefully: no new connections, a last checkpoint, exit 0.
async fn serve_until_stopped(server: ServerHandle) -> Result<(), String> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot watch for SIGTERM: {e}"))?;
    let signal = tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = terminate.recv() => "SIGTERM",
    };
    tracing::info!("{signal}: stopping (no new connections, a last checkpoint)");
    eprintln!("{signal}: stopping");
    server.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}
