//! Incremental SSE parsing for the probe: bytes in (cut anywhere), events
//! out, with only what the probe needs (`id`, and `seq` / `sentAtUs` from the
//! JSON data, read without a JSON parser).

#[derive(Debug, PartialEq)]
pub struct Event {
    pub id: Option<String>,
    pub seq: u64,
    pub sent_at_us: u64,
}

#[derive(Default)]
pub struct Parser {
    buf: Vec<u8>,
}

impl Parser {
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete event carrying `seq` and `sentAtUs`; comments,
    /// `retry` and other blocks are skipped.
    pub fn next(&mut self) -> Option<Event> {
        loop {
            let (end, sep) = block_end(&self.buf)?;
            let block: Vec<u8> = self.buf.drain(..end + sep).collect();
            if let Some(e) = event(&block[..end]) {
                return Some(e);
            }
        }
    }
}

/// Where the first block ends (a blank line), and the separator's length.
fn block_end(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i + 1 < buf.len() {
        if buf[i] == b'\n' {
            if buf[i + 1] == b'\n' {
                return Some((i, 2));
            }
            if buf[i + 1] == b'\r' && buf.get(i + 2) == Some(&b'\n') {
                return Some((i, 3));
            }
        }
        i += 1;
    }
    None
}

fn event(block: &[u8]) -> Option<Event> {
    let mut id = None;
    let (mut seq, mut sent) = (None, None);
    for line in block.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(v) = field(line, b"id") {
            id = Some(String::from_utf8_lossy(v).into_owned());
        } else if let Some(v) = field(line, b"data") {
            seq = seq.or_else(|| number_after(v, b"\"seq\":"));
            sent = sent.or_else(|| number_after(v, b"\"sentAtUs\":"));
        }
    }
    Some(Event {
        id,
        seq: seq?,
        sent_at_us: sent?,
    })
}

fn field<'a>(line: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let rest = line.strip_prefix(name)?.strip_prefix(b":")?;
    Some(rest.strip_prefix(b" ").unwrap_or(rest))
}

fn number_after(hay: &[u8], key: &[u8]) -> Option<u64> {
    let at = hay.windows(key.len()).position(|w| w == key)? + key.len();
    let digits = hay[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&hay[at..at + digits])
        .ok()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_cut_at_any_byte_are_parsed() {
        let stream = "retry: 3000\n\n:\n\nid: t-1\nevent: analysis_result\ndata: {\"seq\":7,\"sentAtUs\":123,\"pad\":\"x\"}\n\nid: 9\r\ndata: {\"sentAtUs\":5,\r\ndata: \"seq\":8}\r\n\r\nevent: other\ndata: {}\n\n";
        for cut in 0..stream.len() {
            let mut p = Parser::default();
            let mut got = Vec::new();
            for part in [&stream[..cut], &stream[cut..]] {
                p.feed(part.as_bytes());
                while let Some(e) = p.next() {
                    got.push(e);
                }
            }
            assert_eq!(
                got,
                vec![
                    Event {
                        id: Some("t-1".into()),
                        seq: 7,
                        sent_at_us: 123
                    },
                    Event {
                        id: Some("9".into()),
                        seq: 8,
                        sent_at_us: 5
                    },
                ],
                "cut at {cut}"
            );
        }
    }
}
