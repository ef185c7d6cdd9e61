//! Rampart's server: the coordinator that executes SQL (catalog, DDL, table changes,
//! queries over consistent snapshots) and the PostgreSQL wire front end that serves it.

pub mod catalog;
pub mod coordinator;
mod durability;
pub mod pg_catalog;
mod query;
pub mod server;
mod statements;
pub mod system_tables;
mod transaction;

pub use coordinator::Coordinator;
pub use server::{start_server, ServerConfig, ServerHandle};
