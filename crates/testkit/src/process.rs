//! A real `rampart serve` process for crash and command-line tests: started on a free
//! 127.0.0.1 port with a data directory, its log appended to a file, stopped with SIGTERM
//! or killed with SIGKILL and started again.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio_postgres::{Client, NoTls};

/// A running `rampart serve`; killed (SIGKILL) when dropped, so a failing test leaves no
/// server behind.
pub struct RampartProcess {
    /// The process.
    pub child: Child,
    /// Its SQL port on 127.0.0.1.
    pub port: u16,
}

impl Drop for RampartProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free on 127.0.0.1 at the moment of asking.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind 127.0.0.1:0")
        .local_addr()
        .expect("local address")
        .port()
}

impl RampartProcess {
    /// Starts `binary serve` with two workers, checkpoints every 50 ms and `data` as its
    /// data directory; its standard error is appended to `log`.
    pub fn start(binary: &Path, data: &Path, log: &Path) -> Self {
        Self::start_with_stdout(binary, data, log, Stdio::null())
    }

    /// [`RampartProcess::start`], its standard output going to `stdout` (`Stdio::piped()`
    /// to read what its sinks print from `child.stdout`).
    pub fn start_with_stdout(binary: &Path, data: &Path, log: &Path, stdout: Stdio) -> Self {
        let port = free_port();
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("open the server log");
        let child = Command::new(binary)
            .args([
                "serve",
                "--workers",
                "2",
                "--checkpoint-interval-ms",
                "50",
                "--data-dir",
            ])
            .arg(data)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("RUST_LOG", "rampart=info,rampart_storage=info,warn")
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("rampart starts");
        RampartProcess { child, port }
    }

    /// Asks the process to stop gracefully (SIGTERM, as systemd and Kubernetes do).
    pub fn sigterm(&self) {
        // SAFETY: `kill` with the pid of a child not yet reaped and a valid signal number
        // has no memory effects.
        let sent = unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        assert_eq!(sent, 0, "SIGTERM sent");
    }

    /// Waits for the process to exit and returns how it did; panics if it has not within
    /// `timeout` (dropping the process then kills it).
    pub async fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("the server's status") {
                return status;
            }
            assert!(Instant::now() < deadline, "the server did not exit within {timeout:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kills the process with SIGKILL and waits for it to be gone.
    pub fn sigkill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("the killed server is reaped");
    }

    /// A client of this server, retrying for up to 60 s while it starts (a restart restores
    /// its views before it listens).
    pub async fn connect(&self) -> Client {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let conn = format!("host=127.0.0.1 port={} user=root dbname=dev", self.port);
            match tokio_postgres::connect(&conn, NoTls).await {
                Ok((client, connection)) => {
                    tokio::spawn(connection);
                    return client;
                }
                Err(e) if Instant::now() > deadline => panic!("server did not come up: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
}
