//! Packing lines into datagrams: newline-separated, each at most `max_packet_bytes`,
//! as StatsD 0.9+, the Datadog agent, Telegraf and statsd_exporter read them. A server
//! ends up with the same metrics as from one datagram per line, in far fewer sends.

/// A datagram ready to send, with what it carries.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    /// The payload: lines separated by `\n`, no trailing newline.
    pub bytes: &'a [u8],
    /// Lines (metrics) in it.
    pub lines: usize,
    /// Requests its counter lines count (their values summed).
    pub increments: u64,
}

/// Fills one datagram at a time and hands each full one to a sender.
#[derive(Debug)]
pub struct Packer {
    max: usize,
    packet: Vec<u8>,
    lines: usize,
    increments: u64,
}

impl Packer {
    /// A packer of datagrams of at most `max` bytes.
    pub fn new(max: usize) -> Self {
        Self {
            max,
            packet: Vec::with_capacity(max),
            lines: 0,
            increments: 0,
        }
    }

    /// Adds one line (without newline) counting `increments` requests. When it does
    /// not fit the current datagram, that one goes to `send` first. A line longer than
    /// a datagram (which the encoder never writes) is sent alone.
    pub fn push(&mut self, line: &[u8], increments: u64, send: &mut impl FnMut(Packet<'_>)) {
        let needed = if self.lines == 0 {
            line.len()
        } else {
            self.packet.len() + 1 + line.len()
        };
        if needed > self.max && self.lines > 0 {
            self.flush(send);
        }
        if self.lines > 0 {
            self.packet.push(b'\n');
        }
        self.packet.extend_from_slice(line);
        self.lines += 1;
        self.increments += increments;
        if self.packet.len() >= self.max {
            self.flush(send);
        }
    }

    /// Sends the current datagram, if it has lines.
    pub fn flush(&mut self, send: &mut impl FnMut(Packet<'_>)) {
        if self.lines == 0 {
            return;
        }
        send(Packet {
            bytes: &self.packet,
            lines: self.lines,
            increments: self.increments,
        });
        self.packet.clear();
        self.lines = 0;
        self.increments = 0;
    }

    /// True when no line waits.
    pub fn is_empty(&self) -> bool {
        self.lines == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_whole_lines_up_to_the_limit() {
        let mut packer = Packer::new(10);
        let mut sent: Vec<(String, usize, u64)> = Vec::new();
        let mut send = |p: Packet<'_>| {
            sent.push((
                String::from_utf8_lossy(p.bytes).into_owned(),
                p.lines,
                p.increments,
            ));
        };
        for line in ["aaaa", "bbbb", "cc", "dddddddddddd", "e"] {
            packer.push(line.as_bytes(), 1, &mut send);
        }
        packer.flush(&mut send);
        assert!(packer.is_empty());
        assert_eq!(
            sent,
            [
                ("aaaa\nbbbb".to_string(), 2, 2),
                ("cc".to_string(), 1, 1),
                ("dddddddddddd".to_string(), 1, 1),
                ("e".to_string(), 1, 1),
            ]
        );
    }
}
