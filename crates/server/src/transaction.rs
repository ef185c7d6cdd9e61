//! Transaction blocks as Rampart can honour them. Every statement applies when it runs:
//! a block groups nothing. So `BEGIN` and `COMMIT` mark the block, a change applied inside
//! one says so in a NOTICE, and `ROLLBACK` succeeds only when nothing was applied since
//! `BEGIN`; otherwise it ends the block with an error naming what it could not undo.
//! After a failed statement in a block, other statements are refused until the block
//! ends, as in PostgreSQL.

use datafusion::sql::sqlparser::ast::Statement;
use rampart_pgwire::{Session, TransactionStatus};
use rampart_sql::{PlanError, RampartStatement};

use crate::coordinator::Executed;

/// A statement that opens or ends a transaction block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BlockControl {
    /// `BEGIN`, `START TRANSACTION`.
    Begin,
    /// `COMMIT`, `END`.
    Commit,
    /// `ROLLBACK`, `ABORT`.
    Rollback,
}

impl BlockControl {
    /// The block control `stmt` is, if it is one. `ROLLBACK TO SAVEPOINT` and `AND CHAIN`
    /// are refused: there is nothing to go back to.
    pub(crate) fn of(stmt: &RampartStatement) -> Result<Option<Self>, PlanError> {
        let RampartStatement::Standard(s) = stmt else {
            return Ok(None);
        };
        Ok(match s.as_ref() {
            Statement::StartTransaction { .. } => Some(BlockControl::Begin),
            Statement::Commit { chain: false, .. } => Some(BlockControl::Commit),
            Statement::Rollback {
                chain: false,
                savepoint: None,
            } => Some(BlockControl::Rollback),
            Statement::Commit { chain: true, .. } | Statement::Rollback { chain: true, .. } => {
                return Err(PlanError::unsupported("AND CHAIN is not supported"))
            }
            Statement::Rollback { savepoint: Some(_), .. } => {
                return Err(PlanError::unsupported(
                    "ROLLBACK TO SAVEPOINT is not supported: each statement applies when it runs",
                ))
            }
            _ => None,
        })
    }

    /// Runs the control statement on `session`.
    pub(crate) fn run(self, session: &mut Session) -> Result<Executed, PlanError> {
        match (self, session.transaction) {
            (BlockControl::Begin, TransactionStatus::Idle) => {
                session.transaction = TransactionStatus::InBlock;
                session.applied_in_block.clear();
                Ok(Executed::command("BEGIN"))
            }
            (BlockControl::Begin, TransactionStatus::InBlock) => {
                Ok(Executed::command("BEGIN").with_notice("there is already a transaction in progress"))
            }
            (BlockControl::Begin, TransactionStatus::Failed) => Err(aborted()),
            (BlockControl::Commit | BlockControl::Rollback, TransactionStatus::Idle) => {
                let tag = if self == BlockControl::Commit {
                    "COMMIT"
                } else {
                    "ROLLBACK"
                };
                Ok(Executed::command(tag).with_notice("there is no transaction in progress"))
            }
            (BlockControl::Commit, TransactionStatus::InBlock) => {
                end_block(session);
                Ok(Executed::command("COMMIT"))
            }
            // COMMIT of a failed block rolls it back, as in PostgreSQL.
            (BlockControl::Rollback, _) | (BlockControl::Commit, TransactionStatus::Failed) => {
                let applied = end_block(session);
                if applied.is_empty() {
                    return Ok(Executed::command("ROLLBACK"));
                }
                Err(PlanError::new(
                    "0A000",
                    format!(
                        "ROLLBACK cannot undo the {} applied since BEGIN ({}): Rampart applies each statement \
                         when it runs; the transaction block has ended",
                        plural(applied.len(), "change", "changes"),
                        applied.join(", ")
                    ),
                ))
            }
        }
    }
}

/// Whether `stmt`, once it succeeds, has changed something a ROLLBACK would have to undo.
pub(crate) fn applies_change(stmt: &RampartStatement) -> bool {
    match stmt {
        RampartStatement::CreateSource { .. } | RampartStatement::CreateSink { .. } | RampartStatement::Drop { .. } => {
            true
        }
        RampartStatement::Show(_) => false,
        RampartStatement::Standard(s) => matches!(
            s.as_ref(),
            Statement::CreateTable(_)
                | Statement::CreateView(_)
                | Statement::Insert(_)
                | Statement::Delete(_)
                | Statement::Copy { .. }
        ),
    }
}

/// Records that `executed`, a change, was applied inside `session`'s block, and tells the
/// client that it cannot be rolled back.
pub(crate) fn note_applied(session: &mut Session, executed: &mut Executed) {
    if session.transaction != TransactionStatus::InBlock {
        return;
    }
    let tag = executed.tag_text();
    executed.notices.push(format!(
        "{tag} is applied now: Rampart does not hold changes until COMMIT, and ROLLBACK cannot undo it"
    ));
    session.applied_in_block.push(tag);
}

/// The error for any statement but COMMIT or ROLLBACK in a failed block (SQLSTATE 25P02).
pub(crate) fn aborted() -> PlanError {
    PlanError::new(
        "25P02",
        "current transaction is aborted, commands ignored until end of transaction block",
    )
}

fn end_block(session: &mut Session) -> Vec<String> {
    session.transaction = TransactionStatus::Idle;
    std::mem::take(&mut session.applied_in_block)
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn control(sql: &str) -> BlockControl {
        let stmts = rampart_sql::parse_statements(sql).expect("parses");
        BlockControl::of(&stmts[0].stmt).expect("a control").expect("is one")
    }

    #[test]
    fn a_rollback_with_nothing_applied_ends_the_block() {
        let mut s = Session::internal();
        control("BEGIN").run(&mut s).expect("begins");
        assert_eq!(s.transaction, TransactionStatus::InBlock);
        let ex = control("ROLLBACK").run(&mut s).expect("nothing to undo");
        assert_eq!(ex.tag_text(), "ROLLBACK");
        assert_eq!(s.transaction, TransactionStatus::Idle);
    }

    #[test]
    fn a_rollback_after_a_change_fails_naming_it_and_ends_the_block() {
        let mut s = Session::internal();
        control("START TRANSACTION").run(&mut s).expect("begins");
        let mut ex = Executed::command_with_rows("INSERT", 3);
        note_applied(&mut s, &mut ex);
        assert_eq!(ex.notices.len(), 1, "the client is told at once");
        let err = control("ROLLBACK").run(&mut s).expect_err("cannot undo the insert");
        assert_eq!(err.sqlstate, "0A000");
        assert!(
            err.message.contains("1 change") && err.message.contains("INSERT 0 3"),
            "{}",
            err.message
        );
        assert_eq!(s.transaction, TransactionStatus::Idle);
        assert!(s.applied_in_block.is_empty());
    }

    #[test]
    fn a_failed_block_refuses_begin_and_commit_rolls_it_back() {
        let mut s = Session::internal();
        control("BEGIN").run(&mut s).expect("begins");
        s.transaction = s.transaction.after_error();
        assert_eq!(control("BEGIN").run(&mut s).expect_err("aborted").sqlstate, "25P02");
        let ex = control("COMMIT").run(&mut s).expect("nothing was applied");
        assert_eq!(ex.tag_text(), "ROLLBACK");
        assert_eq!(s.transaction, TransactionStatus::Idle);
    }

    #[test]
    fn savepoints_and_chains_are_refused() {
        for sql in ["ROLLBACK TO SAVEPOINT a", "COMMIT AND CHAIN"] {
            let stmts = rampart_sql::parse_statements(sql).expect("parses");
            let err = BlockControl::of(&stmts[0].stmt).expect_err("refused");
            assert_eq!(err.sqlstate, "0A000", "{sql}");
        }
    }
}
