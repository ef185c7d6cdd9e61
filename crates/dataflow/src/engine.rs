//! [`Engine`]: starts the timely workers and broadcasts commands to them.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, Sender};
use rampart_repr::{Error, Row, SqlState};

use crate::capture::StoreRegistry;
use crate::command::{Command, PeekReply, PeekRequest};
use crate::worker;

/// A running pool of dataflow workers.
pub struct Engine {
    senders: Vec<Sender<Command>>,
    workers: usize,
    registry: Arc<StoreRegistry>,
    guards: Mutex<Option<timely::communication::WorkerGuards<()>>>,
    /// The worker threads, in worker order: woken when there is work for them.
    threads: Vec<std::thread::Thread>,
}

impl Engine {
    /// Starts `workers` worker threads (at least one).
    pub fn start(workers: usize) -> Result<Engine, Error> {
        let workers = workers.max(1);
        let registry = StoreRegistry::new();
        let (senders, receivers): (Vec<Sender<Command>>, Vec<Receiver<Command>>) =
            (0..workers).map(|_| unbounded()).unzip();
        let receivers = Arc::new(Mutex::new(receivers.into_iter().map(Some).collect::<Vec<_>>()));
        let reg = registry.clone();
        let guards = timely::execute(timely::Config::process(workers), move |w| {
            let rx = receivers.lock().unwrap_or_else(|p| p.into_inner())[w.index()].take();
            if let Some(rx) = rx {
                worker::run(w, rx, reg.clone());
            }
        })
        .map_err(|e| Error::internal(format!("cannot start the dataflow workers: {e}")))?;
        let threads = guards.guards().iter().map(|g| g.thread().clone()).collect();
        Ok(Engine {
            senders,
            workers,
            registry,
            guards: Mutex::new(Some(guards)),
            threads,
        })
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// The registry every view store must be created with.
    pub fn registry(&self) -> &Arc<StoreRegistry> {
        &self.registry
    }

    /// Sends a command to every worker.
    pub fn broadcast(&self, cmd: Command) {
        for s in &self.senders {
            let _ = s.send(cmd.clone());
        }
        for t in &self.threads {
            t.unpark();
        }
    }

    /// Applies `updates` to the table `name` (worker 0 enters them at its current time).
    /// The returned channel receives that time, so a caller can wait until views pass it.
    pub fn update_table(&self, name: &str, updates: Vec<(Row, crate::Diff)>) -> Receiver<crate::Time> {
        let (entered, at) = crossbeam_channel::bounded(1);
        self.broadcast(Command::TableUpdates {
            name: name.to_string(),
            updates,
            entered,
        });
        at
    }

    /// The contents of the named tables and materialized views, all as of one time (the
    /// registry's sealed time): rows once per unit of multiplicity, in the order of `names`.
    /// Waits at most `timeout` for the workers to answer.
    pub fn peek(&self, names: &[String], timeout: Duration) -> Result<Vec<Vec<Row>>, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            if Instant::now() >= deadline {
                return Err(no_answer(timeout));
            }
            let at = self.registry.reseal().saturating_sub(1);
            let (reply, answers) = unbounded();
            self.broadcast(Command::Peek(Arc::new(PeekRequest {
                names: names.to_vec(),
                at,
                reply,
            })));
            let mut contents: Vec<Vec<Row>> = vec![Vec::new(); names.len()];
            let mut retry = false;
            for _ in 0..self.workers {
                let left = deadline.saturating_duration_since(Instant::now());
                match answers.recv_timeout(left) {
                    Ok(PeekReply::Rows(parts)) => {
                        for (all, part) in contents.iter_mut().zip(parts) {
                            all.extend(part);
                        }
                    }
                    Ok(PeekReply::Retry) => retry = true,
                    Ok(PeekReply::Missing(name)) => {
                        return Err(Error::new(
                            SqlState::ObjectNotInPrerequisiteState,
                            format!(
                                "relation \"{name}\" has no running dataflow (it is being dropped, or its dataflow failed to build: see rampart_source_errors)"
                            ),
                        ))
                    }
                    Err(_) => return Err(no_answer(timeout)),
                }
            }
            if !retry {
                return Ok(contents);
            }
        }
    }

    /// The worker threads, in worker order, for readers to wake the worker they hand a
    /// batch to (an idle worker parks for up to [`crate::worker::MAX_IDLE_PARK`]).
    pub fn worker_threads(&self) -> Vec<std::thread::Thread> {
        self.threads.clone()
    }

    /// Stops the workers and waits for them.
    pub fn shutdown(self) {
        drop(self.senders);
        if let Some(g) = self.guards.lock().unwrap_or_else(|p| p.into_inner()).take() {
            drop(g.join());
        }
    }
}

/// The workers did not answer a peek in time (`55000`: the views cannot be read now).
fn no_answer(timeout: Duration) -> Error {
    Error::new(
        SqlState::ObjectNotInPrerequisiteState,
        format!(
            "the dataflow workers did not answer the query within {}s",
            timeout.as_secs()
        ),
    )
}
