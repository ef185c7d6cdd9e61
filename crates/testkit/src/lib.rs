//! What Rampart's tests share: servers (in-process, or a real `rampart serve` process to
//! SIGKILL and restart), the Kafka-protocol broker, clients and result rendering, waits for
//! views to converge, and the seed pipelines with their reference models, written once.
//!
//! | module | what |
//! |---|---|
//! | [`client`] | an in-process server, tokio-postgres clients, rows rendered canonically, `wait_for`, `psql` |
//! | [`process`] | a real `rampart serve` process: start, SIGKILL, connect |
//! | [`broker`] | the Tansu Kafka-protocol broker, produce and consume helpers |
//! | [`seed`] | what the seed modules share: event times, connectors, the check against a seed document |
//! | [`seed1`] | the first seed pipeline: its SQL as the seed document writes it, events, the reference model |
//! | [`seed2`] | the second seed pipeline: its SQL as the seed document writes it, events, the reference model |
//! | [`pipelines`] | the demo's seed pipeline with other connectors, and bounded |
//!
//! The seed documents are in `fixtures/seeds/` (see its README for their origin).

pub mod broker;
pub mod client;
pub mod pipelines;
pub mod process;
pub mod seed;
pub mod seed1;
pub mod seed2;

pub use client::*;
