//! A PostgreSQL server from Debian's `postgresql` package, started by a test:
//! `initdb` into a temporary directory (trust authentication, user `ld`), then
//! `postgres` on a free loopback port with `fsync` off. As root, both run as the
//! `postgres` user (PostgreSQL refuses to run as root).

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::servers::{ServerProcess, run_ok, unprivileged, wait_until};

/// A running PostgreSQL server, stopped on drop.
pub struct Postgres {
    process: ServerProcess,
    bin: PathBuf,
}

/// The newest `/usr/lib/postgresql/*/bin` with `initdb`, or `initdb` on `PATH`.
fn bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").is_file())
        .collect();
    versions.sort();
    versions
        .pop()
        .or_else(|| super::find_program(&["initdb"]).and_then(|p| p.parent().map(PathBuf::from)))
}

impl Postgres {
    /// Starts a server; `None` when PostgreSQL is not installed (outside CI only).
    pub fn start() -> Option<Self> {
        let Some(bin) = bin_dir() else {
            super::require_program(&["initdb"], "apt-get install postgresql")?;
            return None;
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let owner = unprivileged("postgres");
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown");
        }
        let as_owner = |program: &str| {
            let mut command = Command::new(bin.join(program));
            if let Some((uid, gid)) = owner {
                command.uid(uid).gid(gid);
            }
            command
        };
        let data = dir.path().join("data");
        run_ok(
            as_owner("initdb").arg("-D").arg(&data).args([
                "-U",
                "ld",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ]),
            "initdb",
        );
        let port = super::closed_port();
        let log = dir.path().join("postgres.log");
        let log_file = std::fs::File::create(&log).expect("log file");
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&log, Some(uid), Some(gid)).expect("chown log");
        }
        let child = as_owner("postgres")
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(dir.path())
            .args(["-p", &port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .args(["-c", "synchronous_commit=off", "-c", "full_page_writes=off"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("start postgres");
        let server = Self {
            process: ServerProcess { child, dir, port },
            bin,
        };
        wait_until("postgres", Duration::from_secs(30), &log, || {
            server.try_psql("SELECT 1").is_some_and(|out| out == "1")
        });
        Some(server)
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.process.port
    }

    /// A SQLAlchemy URL of database `postgres` as user `ld` (`driver`: the scheme,
    /// e.g. `postgresql+psycopg2`).
    pub fn url(&self, driver: &str) -> String {
        format!("{driver}://ld@127.0.0.1:{}/postgres", self.port())
    }

    fn try_psql(&self, sql: &str) -> Option<String> {
        let output = Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port().to_string()])
            .args([
                "-U",
                "ld",
                "-d",
                "postgres",
                "-tA",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ])
            .stdin(Stdio::null())
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
    }

    /// `psql -tA -c sql`: the output trimmed; panics when the statement fails.
    pub fn psql(&self, sql: &str) -> String {
        self.try_psql(sql)
            .unwrap_or_else(|| panic!("psql failed: {sql}"))
    }
}
