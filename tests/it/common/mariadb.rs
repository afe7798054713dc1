//! A MariaDB server from Debian's `mariadb-server` package, started by a test:
//! `mariadb-install-db` into a temporary directory, then `mariadbd` on a free
//! loopback port (as root with `--user=root`), with a user `ld` whose password is
//! [`PASSWORD`] and a database `shop`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::servers::{ServerProcess, run_ok, wait_until};

/// The password of user `ld` (tests check that it is never printed).
pub const PASSWORD: &str = "s3cret-Pw";

/// A running MariaDB server, stopped on drop.
pub struct MariaDb {
    process: ServerProcess,
    client: PathBuf,
}

impl MariaDb {
    /// Starts a server; `None` when MariaDB is not installed (outside CI only).
    pub fn start() -> Option<Self> {
        let server =
            super::require_program(&["mariadbd", "mysqld"], "apt-get install mariadb-server")?;
        let install = super::require_program(
            &["mariadb-install-db", "mysql_install_db"],
            "apt-get install mariadb-server",
        )?;
        let client =
            super::require_program(&["mariadb", "mysql"], "apt-get install mariadb-client")?;
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        run_ok(
            Command::new(install)
                .arg("--no-defaults")
                .arg(format!("--datadir={}", data.display()))
                .args(["--user=root", "--auth-root-authentication-method=normal"])
                .args(["--skip-test-db", "--skip-name-resolve"]),
            "mariadb-install-db",
        );
        let port = super::closed_port();
        let log = dir.path().join("mariadb.log");
        let child = Command::new(server)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", dir.path().join("sock").display()))
            .arg(format!("--pid-file={}", dir.path().join("pid").display()))
            .arg(format!("--log-error={}", log.display()))
            .arg(format!("--port={port}"))
            .args(["--bind-address=127.0.0.1", "--user=root", "--skip-log-bin"])
            .args([
                "--innodb-buffer-pool-size=32M",
                "--innodb-flush-log-at-trx-commit=0",
            ])
            .args(["--skip-name-resolve", "--max-connections=500"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mariadbd");
        let server = Self {
            process: ServerProcess { child, dir, port },
            client,
        };
        wait_until("mariadbd", Duration::from_secs(30), &log, || {
            server
                .try_sql("root", "SELECT 1")
                .is_some_and(|out| out == "1")
        });
        server.sql_as_root(&format!(
            "CREATE USER 'ld'@'%' IDENTIFIED BY '{PASSWORD}'; GRANT ALL ON *.* TO 'ld'@'%'; CREATE DATABASE shop"
        ));
        Some(server)
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.process.port
    }

    /// A SQLAlchemy URL of database `shop` as user `ld` with its password.
    pub fn url(&self, driver: &str) -> String {
        format!("{driver}://ld:{PASSWORD}@127.0.0.1:{}/shop", self.port())
    }

    fn try_sql(&self, user: &str, sql: &str) -> Option<String> {
        let mut command = Command::new(&self.client);
        command
            .arg("--no-defaults")
            .args([
                "-h",
                "127.0.0.1",
                "-P",
                &self.port().to_string(),
                "-u",
                user,
            ])
            .args(["-N", "-B", "-e", sql]);
        if user == "ld" {
            command.arg(format!("-p{PASSWORD}")).arg("shop");
        }
        let output = command.stdin(Stdio::null()).output().ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
    }

    fn sql_as_root(&self, sql: &str) -> String {
        self.try_sql("root", sql)
            .unwrap_or_else(|| panic!("mariadb failed: {sql}"))
    }

    /// Runs `sql` in database `shop`; its output (tab-separated, no header) trimmed.
    pub fn sql(&self, sql: &str) -> String {
        self.try_sql("ld", sql)
            .unwrap_or_else(|| panic!("mariadb failed: {sql}"))
    }
}
