//! Sending the sink's datagrams, and counting what was sent.
//!
//! Each datagram sent on its own costs the load generator's core about 2.5 µs in the
//! kernel (a loopback send and its delivery), more than encoding the requests it
//! carries. Where the kernel offers it (Linux's UDP generic segmentation offload,
//! through `quinn-udp`), full datagrams are handed over up to 64 at a time in one
//! system call and the kernel cuts them apart: the server receives the very same
//! datagrams. Offload needs every datagram of a call but the last to have the same
//! size, so each of those is padded to `max_packet_bytes` with newlines, which StatsD,
//! the Datadog agent, Telegraf and statsd_exporter skip as empty lines. Without
//! offload (another system, or a kernel that refuses it) each datagram is sent alone,
//! as before.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use quinn_udp::{Transmit, UdpSocketState};

use super::packet::Packet;
use super::queue::Counters;
use crate::sinks::lock;

/// The longest a send may wait for room in the socket's buffer.
const SEND_TIMEOUT: Duration = Duration::from_secs(1);
/// The most bytes one segmented send carries (a UDP datagram's limit, less headers).
const MAX_SEGMENTED_BYTES: usize = 65_000;

/// Sends one datagram (the tests' transport).
#[cfg(test)]
pub(crate) type SendFn = Box<dyn FnMut(&[u8]) -> io::Result<usize> + Send>;

/// Where datagrams go.
pub(crate) enum Transport {
    /// A UDP socket connected to the server.
    Udp(UdpTransport),
    /// A function, one call per datagram.
    #[cfg(test)]
    Function(SendFn),
}

/// A UDP socket connected to the server (so that an ICMP "port unreachable" shows as an
/// error on a later send), with segmentation offload when the kernel has it.
pub(crate) struct UdpTransport {
    socket: UdpSocket,
    state: UdpSocketState,
    target: SocketAddr,
}

impl UdpTransport {
    /// A socket connected to `target`.
    pub(crate) fn connect(target: SocketAddr) -> io::Result<Self> {
        let local: SocketAddr = if target.is_ipv4() {
            SocketAddr::from(([0, 0, 0, 0], 0))
        } else {
            SocketAddr::from(([0u16; 8], 0))
        };
        let socket = UdpSocket::bind(local)?;
        socket.connect(target)?;
        // Makes the socket non-blocking: a full buffer is waited for below.
        let state = UdpSocketState::new((&socket).into())?;
        Ok(Self {
            socket,
            state,
            target,
        })
    }

    /// How many datagrams of `size` bytes one send may carry (1: no offload).
    fn max_segments(&self, size: usize) -> usize {
        self.state
            .max_gso_segments()
            .min(MAX_SEGMENTED_BYTES / size.max(1))
            .max(1)
    }

    /// Sends `bytes` as datagrams of `size` bytes (the last may be shorter), or as one
    /// datagram when `size` is `None`, waiting at most [`SEND_TIMEOUT`] for room.
    fn send(&self, bytes: &[u8], size: Option<usize>) -> io::Result<()> {
        let transmit = Transmit {
            destination: self.target,
            ecn: None,
            contents: bytes,
            segment_size: size.filter(|&size| size < bytes.len()),
            src_ip: None,
        };
        let deadline = Instant::now() + SEND_TIMEOUT;
        loop {
            match self.state.try_send((&self.socket).into(), &transmit) {
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        return Err(error);
                    }
                    std::thread::sleep(Duration::from_micros(200));
                }
                other => return other,
            }
        }
    }
}

/// Sends datagrams through a [`Transport`], batching them for segmentation offload,
/// and counts what was sent and what failed.
pub(crate) struct Output {
    transport: Transport,
    counters: Arc<Counters>,
    /// The size every batched datagram but the last is padded to (`max_packet_bytes`).
    segment: usize,
    /// Datagrams waiting for one segmented send.
    batch: Vec<u8>,
    datagrams: usize,
    /// Length of the last datagram in `batch`, unpadded.
    last_len: usize,
    lines: usize,
    increments: u64,
}

impl Output {
    /// Datagrams of at most `segment` bytes to `transport`, counted in `counters`.
    pub(crate) fn new(transport: Transport, segment: usize, counters: Arc<Counters>) -> Self {
        Self {
            transport,
            counters,
            segment,
            batch: Vec::new(),
            datagrams: 0,
            last_len: 0,
            lines: 0,
            increments: 0,
        }
    }

    fn max_segments(&self) -> usize {
        match &self.transport {
            Transport::Udp(udp) => udp.max_segments(self.segment),
            #[cfg(test)]
            Transport::Function(_) => 1,
        }
    }

    /// Sends `packet`, or keeps it for the next segmented send.
    pub(crate) fn send(&mut self, packet: Packet<'_>) {
        let max = self.max_segments();
        if max <= 1 || packet.bytes.len() > self.segment {
            self.flush();
            self.send_alone(packet);
            return;
        }
        if self.datagrams > 0 {
            let padded = self.batch.len() + (self.segment - self.last_len);
            self.batch.resize(padded, b'\n');
        }
        self.batch.extend_from_slice(packet.bytes);
        self.datagrams += 1;
        self.last_len = packet.bytes.len();
        self.lines += packet.lines;
        self.increments += packet.increments;
        if self.datagrams >= max {
            self.flush();
        }
    }

    /// Sends the datagrams kept for a segmented send.
    pub(crate) fn flush(&mut self) {
        if self.datagrams == 0 {
            return;
        }
        #[cfg_attr(not(test), allow(irrefutable_let_patterns))]
        let Transport::Udp(udp) = &self.transport else {
            unreachable!("only the UDP transport batches");
        };
        let result = udp.send(&self.batch, Some(self.segment));
        let counters = &self.counters;
        match result {
            Ok(()) => {
                Counters::add(&counters.datagrams_sent, self.datagrams as u64);
                Counters::add(&counters.metrics_sent, self.lines as u64);
                Counters::add(&counters.bytes_sent, self.batch.len() as u64);
                Counters::add(&counters.requests_sent, self.increments);
            }
            // The kernel refused the offload (it stops using it): each datagram alone.
            Err(_) if udp.max_segments(self.segment) <= 1 => {
                let batch = std::mem::take(&mut self.batch);
                self.resend_alone(&batch);
                self.batch = batch;
            }
            Err(error) => {
                Counters::add(&counters.send_errors, 1);
                Counters::add(&counters.metrics_failed, self.lines as u64);
                *lock(&counters.last_error) = Some(format!("UDP send: {error}"));
            }
        }
        self.batch.clear();
        self.datagrams = 0;
        self.lines = 0;
        self.increments = 0;
    }

    /// Sends the datagrams of a batch one by one, without their padding.
    fn resend_alone(&mut self, batch: &[u8]) {
        for datagram in batch.chunks(self.segment) {
            let bytes = datagram.trim_ascii_end();
            let lines = bytes.split(|&b| b == b'\n').count();
            let increments = bytes.split(|&b| b == b'\n').filter_map(counter_value).sum();
            self.send_alone(Packet {
                bytes,
                lines,
                increments,
            });
        }
    }

    fn send_alone(&mut self, packet: Packet<'_>) {
        let result = match &mut self.transport {
            Transport::Udp(udp) => udp.send(packet.bytes, None),
            #[cfg(test)]
            Transport::Function(send) => send(packet.bytes).map(drop),
        };
        let counters = &self.counters;
        match result {
            Ok(()) => {
                Counters::add(&counters.datagrams_sent, 1);
                Counters::add(&counters.metrics_sent, packet.lines as u64);
                Counters::add(&counters.bytes_sent, packet.bytes.len() as u64);
                Counters::add(&counters.requests_sent, packet.increments);
            }
            Err(error) => {
                Counters::add(&counters.send_errors, 1);
                Counters::add(&counters.metrics_failed, packet.lines as u64);
                *lock(&counters.last_error) = Some(format!("UDP send: {error}"));
            }
        }
    }
}

/// The value of a counter line (`name:N|c...`), which counts N requests.
fn counter_value(line: &[u8]) -> Option<u64> {
    let line = std::str::from_utf8(line).ok()?;
    let (_, rest) = line.split_once(':')?;
    let (value, rest) = rest.split_once('|')?;
    rest.starts_with("c").then(|| value.parse().ok())?
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    /// Every datagram `receiver` has, as text.
    fn received(receiver: &UdpSocket) -> Vec<String> {
        receiver
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let mut datagrams = Vec::new();
        let mut buf = [0u8; 65_536];
        while let Ok(n) = receiver.recv(&mut buf) {
            datagrams.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        datagrams
    }

    #[test]
    fn batched_datagrams_arrive_as_they_were_packed() {
        let receiver = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let udp = UdpTransport::connect(receiver.local_addr().expect("addr")).expect("connect");
        let counters = Arc::new(Counters::default());
        let mut output = Output::new(Transport::Udp(udp), 100, counters.clone());
        let mut sent = Vec::new();
        for i in 0..150usize {
            let text = format!("a.requests:1|c\na.latency:{i}|ms{}", "x".repeat(i % 40));
            output.send(Packet {
                bytes: text.as_bytes(),
                lines: 2,
                increments: 1,
            });
            sent.push(text);
        }
        output.flush();
        let got: Vec<String> = received(&receiver)
            .iter()
            .map(|d| {
                assert!(d.len() <= 100, "{} bytes", d.len());
                d.trim_end_matches('\n').to_string()
            })
            .collect();
        assert_eq!(got, sent);
        assert_eq!(Counters::get(&counters.datagrams_sent), 150);
        assert_eq!(Counters::get(&counters.metrics_sent), 300);
        assert_eq!(Counters::get(&counters.requests_sent), 150);
        assert_eq!(Counters::get(&counters.send_errors), 0);
    }

    #[test]
    fn counter_values_are_read_from_counter_lines_only() {
        assert_eq!(counter_value(b"ld.requests:7|c|#a:b"), Some(7));
        assert_eq!(counter_value(b"ld.request.latency:7|ms"), None);
        assert_eq!(counter_value(b""), None);
    }
}
