//! Reading a recorded watch stream (or a pod, or a pod list) one JSON document at a time, with
//! the line each starts on: the input is read incrementally, line by line, and only the
//! document being read is held in memory, so `classify` and `replay --kube-watch` run in time
//! linear in the input and print as they read.
//!
//! A document ends at the end of a line where its brackets balance. JSON Lines are one
//! document per line; pretty-printed documents (`kubectl get pods -w -o json
//! --output-watch-events`) span several lines, their nested lines indented. A broken document
//! is an error for that document only: it ends where a line that cannot continue it starts
//! (`{` or `[` in the first column, as the next document does), or at a line that leaves a
//! string open (JSON strings cannot hold a line break).
//!
//! ```
//! use podwarden_sim::watch_stream::Documents;
//!
//! let input = "{\"a\":1}\n\n{\"b\":\n  2}\n";
//! let docs: Vec<_> = Documents::new(input.as_bytes()).collect::<Result<_, _>>().unwrap();
//! assert_eq!(docs.iter().map(|d| (d.line, d.only)).collect::<Vec<_>>(), [(1, false), (3, false)]);
//! ```

use std::io::{self, BufRead};

use podwarden_core::k8s_json::ParseError;
use serde_json::Value;

/// One JSON document of the input.
#[derive(Debug)]
pub struct Document {
    /// 1-based line it starts on.
    pub line: usize,
    /// Whether it is the input's only document (then it may be a Pod or a `List`, not only a
    /// watch event).
    pub only: bool,
    /// The document, or why it is not JSON.
    pub value: Result<Value, ParseError>,
}

/// The documents of a reader, in order; an `Err` item is a read error (the input ends there).
#[derive(Debug)]
pub struct Documents<R> {
    reader: R,
    /// Lines read so far.
    line: usize,
    /// A line read but not yet used: it starts the next document.
    carried: Option<String>,
    /// The first document, held until a second one shows it is not the only one.
    first: Option<(usize, String)>,
    /// Whether reading has begun.
    started: bool,
    /// Documents given out.
    given: usize,
    /// A read error met while reading ahead, given out after the document before it.
    read_error: Option<io::Error>,
    /// A read error was given out: the input ends there.
    failed: bool,
}

impl<R: BufRead> Documents<R> {
    /// Reads documents from `reader`.
    pub fn new(reader: R) -> Self {
        Self {
            reader,
            line: 0,
            carried: None,
            first: None,
            started: false,
            given: 0,
            read_error: None,
            failed: false,
        }
    }

    fn read_line(&mut self) -> io::Result<Option<String>> {
        if let Some(text) = self.carried.take() {
            return Ok(Some(text));
        }
        let mut bytes = Vec::new();
        if self.reader.read_until(b'\n', &mut bytes)? == 0 {
            return Ok(None);
        }
        self.line += 1;
        String::from_utf8(bytes).map(Some).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("line {} is not valid UTF-8", self.line),
            )
        })
    }

    /// The next document's text and the line it starts on, blank lines skipped.
    fn next_text(&mut self) -> io::Result<Option<(usize, String)>> {
        let mut text = loop {
            match self.read_line()? {
                None => return Ok(None),
                Some(line) if line.trim().is_empty() => {}
                Some(line) => break line,
            }
        };
        let start = self.line;
        let mut scan = Balance::default();
        scan.feed(&text);
        while scan.open() {
            let Some(line) = self.read_line()? else { break };
            if line.starts_with(['{', '[']) {
                // The next document starts: this one is broken.
                self.carried = Some(line);
                break;
            }
            scan.feed(&line);
            text.push_str(&line);
        }
        Ok(Some((start, text)))
    }

    fn step(&mut self) -> io::Result<Option<Document>> {
        if let Some(e) = self.read_error.take() {
            return Err(e);
        }
        if !self.started {
            self.started = true;
            self.first = self.next_text()?;
        }
        let Some((line, text)) = self.first.take() else {
            return Ok(None);
        };
        // One document ahead, to know whether this one is the only one; a read error there
        // comes after this document.
        let next = self.next_text().unwrap_or_else(|e| {
            self.read_error = Some(e);
            None
        });
        let only = next.is_none() && self.read_error.is_none() && self.given == 0;
        self.first = next;
        self.given += 1;
        Ok(Some(Document {
            line,
            only,
            value: serde_json::from_str(&text).map_err(ParseError::from),
        }))
    }
}

impl<R: BufRead> Iterator for Documents<R> {
    type Item = io::Result<Document>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let step = self.step();
        self.failed = step.is_err();
        step.transpose()
    }
}

/// Whether a document's brackets are still open, fed line by line (outside strings).
#[derive(Debug, Default)]
struct Balance {
    depth: i64,
    in_string: bool,
    escaped: bool,
    /// A line left a string open or closed more than it opened: the document is broken.
    broken: bool,
}

impl Balance {
    fn feed(&mut self, line: &str) {
        for b in line.bytes() {
            if self.in_string {
                match (self.escaped, b) {
                    (true, _) => self.escaped = false,
                    (false, b'\\') => self.escaped = true,
                    (false, b'"') => self.in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => self.depth -= 1,
                _ => {}
            }
        }
        if self.in_string || self.depth < 0 {
            self.broken = true;
        }
    }

    fn open(&self) -> bool {
        self.depth > 0 && !self.broken
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::{classify_reader, default_fatal_reasons};
    use crate::kube_replay::{KubeReplay, KubeReplaySpec};

    const SIGTERM: &str = include_str!("../streams/sigterm-storm.jsonl");

    fn lines_of(docs: &[Document]) -> Vec<(usize, bool, bool)> {
        docs.iter()
            .map(|d| (d.line, d.only, d.value.is_ok()))
            .collect()
    }

    fn read(input: &str) -> Vec<Document> {
        Documents::new(input.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn a_broken_pretty_document_fails_alone_and_the_next_one_is_read() {
        let input = "{\n  \"a\": [1,\n\n{\n  \"b\": 2\n}\n\"open\n[1]\n";
        assert_eq!(
            lines_of(&read(input)),
            [
                (1, false, false),
                (4, false, true),
                (7, false, false),
                (8, false, true)
            ]
        );
        assert_eq!(lines_of(&read("\n\n{\"a\":\n 1}\n")), [(3, true, true)]);
        assert!(read("").is_empty());
    }

    #[test]
    fn invalid_utf8_is_a_read_error_naming_its_line() {
        let mut docs = Documents::new(&b"{}\n{\"a\":\"\xff\"}\n"[..]);
        assert!(docs.next().unwrap().is_ok());
        let e = docs.next().unwrap().unwrap_err();
        assert_eq!(e.to_string(), "line 2 is not valid UTF-8");
        assert!(docs.next().is_none());
    }

    /// 12,000 pretty-printed events (over 60,000 lines) with a broken one in the middle: the
    /// old reader counted lines from the start for every document, minutes for this.
    #[test]
    fn a_large_pretty_printed_stream_is_classified_in_one_pass() {
        let first = SIGTERM.lines().next().unwrap();
        let value: Value = serde_json::from_str(first).unwrap();
        let pretty = serde_json::to_string_pretty(&value).unwrap();
        let height = pretty.lines().count();
        let mut input = String::new();
        for i in 0..12_000 {
            if i == 6_000 {
                input.push_str("{\n  \"type\": \"MODIFIED\",\n");
            }
            input.push_str(&pretty);
            input.push('\n');
        }
        assert!(input.lines().count() > 60_000);
        let fatal = default_fatal_reasons();
        let results: Vec<_> = classify_reader(input.as_bytes(), &fatal)
            .map(Result::unwrap)
            .collect();
        assert_eq!(results.len(), 12_001);
        let bad: Vec<usize> = results
            .iter()
            .filter_map(|r| r.as_ref().err().map(|e| e.line))
            .collect();
        assert_eq!(bad, [6_000 * height + 1]);
        let last = results.last().unwrap().as_ref().unwrap();
        assert_eq!(last.line, 11_999 * height + 2 + 1);
        assert!(results.iter().flatten().all(|e| e.event == "MODIFIED"));
    }

    /// 2,600 copies of the recorded SIGTERM stream as JSON Lines (54,600 lines), replayed event
    /// by event as read.
    #[test]
    fn a_large_json_lines_stream_is_replayed_in_one_pass() {
        let copies = 2_600;
        let input = format!("{}\n", SIGTERM.trim_end()).repeat(copies);
        let per_copy = SIGTERM.lines().count();
        let mut replay = KubeReplay::new(&KubeReplaySpec::default());
        let mut last_line = 0;
        for item in crate::classify::watch_lines_from(input.as_bytes()) {
            let (line, parsed) = item.unwrap();
            last_line = line;
            assert!(replay.push(line, parsed).is_ok(), "line {line}");
        }
        let summary = replay.finish();
        assert_eq!(summary.events, copies * per_copy);
        assert_eq!(last_line, copies * per_copy);
        assert_eq!(summary.malformed, 0);
        assert!(summary.tries_tracked > 0);
    }
}
