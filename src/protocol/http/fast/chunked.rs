//! A decoder for `Transfer-Encoding: chunked` bodies that works in place over the
//! connection's read buffer. Written by hand because it must not allocate or copy:
//! the data bytes are handed out as slices of the buffer (and usually dropped), and
//! the decoder keeps only a small state between reads. Chunk-size lines are parsed
//! by `httparse::parse_chunk_size`.

/// Where the decoder is in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk, with this many data bytes left.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines up to an empty line.
    Trailers,
    /// The body is complete.
    Done,
}

/// Incremental chunked-body decoder.
#[derive(Debug)]
pub(crate) struct ChunkedDecoder {
    state: State,
}

impl ChunkedDecoder {
    /// A decoder at the start of a body.
    pub(crate) fn new() -> Self {
        Self { state: State::Size }
    }

    /// True once the last chunk and the trailers have been read.
    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes what it can of `input`, passing each run of data bytes to `data`, and
    /// returns how many bytes of `input` it consumed (the rest is an incomplete line
    /// to present again with more bytes after it).
    pub(crate) fn decode(
        &mut self,
        input: &[u8],
        data: &mut impl FnMut(&[u8]),
    ) -> Result<usize, String> {
        let mut pos = 0;
        loop {
            let rest = &input[pos..];
            match self.state {
                State::Done => return Ok(pos),
                State::Size => match httparse::parse_chunk_size(rest) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        pos += used;
                        self.state = if size == 0 {
                            State::Trailers
                        } else {
                            State::Data(size)
                        };
                    }
                    Ok(httparse::Status::Partial) => return Ok(pos),
                    Err(_) => return Err("invalid chunk size line".into()),
                },
                State::Data(left) => {
                    if rest.is_empty() {
                        return Ok(pos);
                    }
                    let take = rest.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    data(&rest[..take]);
                    pos += take;
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        State::DataEnd
                    } else {
                        State::Data(left)
                    };
                }
                State::DataEnd => {
                    if rest.len() < 2 {
                        return Ok(pos);
                    }
                    if &rest[..2] != b"\r\n" {
                        return Err("missing CRLF after chunk data".into());
                    }
                    pos += 2;
                    self.state = State::Size;
                }
                State::Trailers => {
                    let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") else {
                        return Ok(pos);
                    };
                    pos += line_end + 2;
                    if line_end == 0 {
                        self.state = State::Done;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` fed in pieces of `step` bytes, as reads would deliver it.
    fn decode_in_steps(input: &[u8], step: usize) -> (Vec<u8>, usize) {
        let mut decoder = ChunkedDecoder::new();
        let mut body = Vec::new();
        let mut pending: Vec<u8> = Vec::new();
        let mut fed = 0;
        while !decoder.is_done() && fed < input.len() {
            let end = (fed + step).min(input.len());
            pending.extend_from_slice(&input[fed..end]);
            fed = end;
            let used = decoder
                .decode(&pending, &mut |d| body.extend_from_slice(d))
                .expect("valid");
            pending.drain(..used);
        }
        assert!(decoder.is_done());
        (body, pending.len() + input.len() - fed)
    }

    #[test]
    fn decodes_chunks_with_extensions_and_trailers_in_any_split() {
        let input = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nExpires: never\r\n\r\nNEXT";
        for step in [1, 2, 3, 7, input.len()] {
            let (body, left) = decode_in_steps(input, step);
            assert_eq!(body, b"Wikipedia in\r\n\r\nchunks.", "step {step}");
            assert_eq!(left, 4, "the bytes after the body stay: step {step}");
        }
    }

    #[test]
    fn bad_framing_is_an_error() {
        let mut decoder = ChunkedDecoder::new();
        assert!(decoder.decode(b"zz\r\n", &mut |_| {}).is_err());
        let mut decoder = ChunkedDecoder::new();
        assert!(decoder.decode(b"2\r\nokXX", &mut |_| {}).is_err());
    }
}
