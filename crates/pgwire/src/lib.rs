//! The PostgreSQL wire-protocol front end: accepts client connections (psql, JDBC,
//! tokio-postgres, ...) and serves their queries from a [`SqlBackend`].
//!
//! No TLS (an SSLRequest is answered `N`) and no authentication (any user and database).
//! Both the simple query protocol and the extended protocol (Parse/Bind/Describe/Execute)
//! are served; bound parameters are substituted into the SQL text as literals.
//! The crate depends on no other Rampart crate: the engine plugs in as a [`SqlBackend`].
//! See this crate's `CONTEXT.md` for the layout and invariants.

pub mod backend;
pub mod encode;
pub mod handler;
pub mod params;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

pub use backend::{QueryOutput, Session, SqlBackend, SqlError, StatementOutcome, TransactionStatus};
pub use handler::SERVER_VERSION;

/// Accepts connections on `listener` forever, one task per client.
///
/// Failures to accept a connection (e.g. too many open files) are logged and retried
/// after a short pause; a failing client connection only ends its own task.
pub async fn serve(listener: TcpListener, backend: Arc<dyn SqlBackend>) -> std::io::Result<()> {
    let handlers = Arc::new(handler::Handlers::new(backend));
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "pgwire: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if let Err(e) = socket.set_nodelay(true) {
            tracing::debug!(error = %e, %peer, "pgwire: cannot set TCP_NODELAY");
        }
        let handlers = handlers.clone();
        tokio::spawn(async move {
            tracing::debug!(%peer, "pgwire: client connected");
            if let Err(e) = pgwire::tokio::process_socket(socket, None, handlers).await {
                tracing::debug!(error = %e, %peer, "pgwire: connection ended with an error");
            }
        });
    }
}
