//! A server that accepts connections and never answers nor reads (at most 200 held,
//! for at most 120 s; stopped when dropped): a stalled collector, agent or database
//! for the sinks' "never blocks the load" tests; or, with a greeting, one that completes
//! its protocol's handshake first.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A running stalled server.
pub struct Stalled {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Stalled {
    /// Binds a free loopback port and starts holding connections.
    pub fn start() -> Self {
        Self::with_greeting(|_| {})
    }

    /// Like [`Stalled::start`], but first runs `greet` on each connection accepted
    /// (blocking, with a 5 s read timeout): a server that completes its protocol's
    /// handshake and then stops reading.
    pub fn with_greeting(greet: impl Fn(&mut TcpStream) + Send + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(120);
            while !flag.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((mut stream, _)) if held.len() < 200 => {
                        let _ = stream.set_nonblocking(false);
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                        greet(&mut stream);
                        held.push(stream);
                    }
                    Ok(_) => {}
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Stalled {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
