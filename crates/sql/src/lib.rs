//! Rampart's SQL front end: parsing (PostgreSQL dialect plus RisingWave's streaming DDL),
//! rewriting of streaming table functions (`TUMBLE`, `HOP`), planning through DataFusion,
//! and lowering DataFusion logical plans to Rampart's dataflow IR.

pub mod ast;
pub mod emit;
pub mod error;
pub mod flink;
pub mod lower;
pub mod options;
pub mod parse;
pub mod planner;
pub mod retention;
pub mod session_functions;
pub mod udf;
pub mod window_rewrite;

pub use ast::{FormatSpec, RampartStatement, ShowKind, SinkFrom, WatermarkSpec};
pub use error::PlanError;
pub use parse::{parse_statements, ParsedStatement};
