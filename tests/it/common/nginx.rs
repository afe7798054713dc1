//! nginx for the tests that run against it: started in a folder of its own with the
//! configuration a test writes, in its own process group with no inherited output,
//! and stopped whole (master and workers) when dropped.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::Workdir;

/// The nginx binary (Debian puts it in /usr/sbin, which may not be on `PATH`).
pub fn nginx_binary() -> &'static str {
    for candidate in ["/usr/sbin/nginx", "/usr/bin/nginx"] {
        if std::path::Path::new(candidate).exists() {
            return candidate;
        }
    }
    panic!("nginx is not installed: run scripts/test, which installs nginx-light");
}

/// A running nginx; dropping it stops every process of it.
pub struct Nginx {
    child: Child,
    /// Its folder: configuration, pid file, logs and temporary files.
    pub dir: Workdir,
}

impl Nginx {
    /// Starts nginx with `conf` (`{d}` in it stands for its folder) and waits up to
    /// 10 s until `port` accepts connections.
    pub fn start(dir: Workdir, conf: &str, port: u16) -> Self {
        let d = dir.dir.path().display().to_string();
        let conf = conf.replace("{d}", &d);
        dir.write("nginx.conf", &conf);
        let child = Command::new(nginx_binary())
            .args([
                "-c",
                &format!("{d}/nginx.conf"),
                "-e",
                &format!("{d}/error.log"),
            ])
            // Its own group, so that drop stops the workers too (a worker forked while
            // the master stops would otherwise be left running); no inherited output,
            // so that no stray process can hold the test runner's output open.
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        let nginx = Self { child, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not start: {}",
                std::fs::read_to_string(nginx.dir.path("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        nginx
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM to the whole group: the master stops its workers (SIGKILL to the
        // master alone would orphan them).
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}
