//! The trace: one step per world event, executor input and command, hashed as it is made, so
//! that two runs can be compared by one number; written as a JSON line when a file is asked for,
//! so that a run can be read and replayed line by line.
//!
//! The hash is over each step's compact form (`trace/compact.rs`), not its JSON: a run that
//! writes no file serialises no JSON. Two runs with equal JSON lines have equal compact forms and
//! so equal hashes (the compact form prints back as the same JSON line: `compact::to_json`).

mod compact;

use std::collections::VecDeque;
use std::io::Write;

use serde::{Deserialize, Serialize};

use crate::scenario::Scenario;

/// The trace format this simulator writes and replays (a header's `podwarden_trace`).
pub const TRACE_FORMAT: u32 = 1;

/// The first line of every trace: everything needed to run the same world again. The world
/// writes it; `replay` and `plot` read it back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TraceHeader {
    /// The trace format ([`TRACE_FORMAT`]).
    pub podwarden_trace: u32,
    /// The seed of the run.
    pub seed: u64,
    /// The world that ran.
    pub scenario: Scenario,
}

/// FNV-1a, 64 bit: a stable, dependency-free hash whose value never changes between versions or
/// platforms (unlike `std`'s `DefaultHasher`). The world names its random streams with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fnv64(u64);

impl Default for Fnv64 {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv64 {
    /// Mixes `bytes` in.
    pub fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    /// The hash so far.
    #[must_use]
    pub fn value(self) -> u64 {
        self.0
    }
}

/// The trace hash: each step's compact form mixed in eight bytes at a time, then its length.
/// Stable across versions and platforms (little-endian words, fixed constants). Every mix is a
/// bijection of the state for a given word (xor, multiplication by an odd constant, rotation), so
/// two traces that differ in one step always end with different hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StepHash(u64);

impl Default for StepHash {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl StepHash {
    fn mix(&mut self, word: u64) {
        self.0 = (self.0 ^ word)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(29);
    }

    fn step(&mut self, form: &[u8]) {
        let mut words = form.chunks_exact(8);
        for w in &mut words {
            let mut word = [0; 8];
            word.copy_from_slice(w);
            self.mix(u64::from_le_bytes(word));
        }
        let tail = words.remainder();
        if !tail.is_empty() {
            let mut word = [0; 8];
            word[..tail.len()].copy_from_slice(tail);
            self.mix(u64::from_le_bytes(word));
        }
        self.mix(form.len() as u64);
    }
}

/// How the last line of a trace that ended at a violation starts (`{"violation":{"invariant":…,
/// "at_ms":…,"detail":…}}`); no step line starts so (they start with `{"t":`), nor the header.
pub const VIOLATION_LINE_PREFIX: &str = "{\"violation\":";

/// Where trace steps go: always into the rolling hash and a short ring of recent steps (for
/// violation reports), and as JSON lines into a file when asked.
pub struct Trace {
    hash: StepHash,
    lines: u64,
    /// The last steps' compact forms, oldest first; their buffers are reused.
    recent: VecDeque<Vec<u8>>,
    /// The buffer the next step is written into: the oldest recent step's, once the ring is full.
    spare: Vec<u8>,
    out: Option<Box<dyn Write>>,
    /// The JSON line being written (reused).
    json: Vec<u8>,
    write_error: Option<String>,
}

impl std::fmt::Debug for Trace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trace")
            .field("hash", &self.hash)
            .field("lines", &self.lines)
            .finish_non_exhaustive()
    }
}

const RECENT: usize = 40;

impl Trace {
    /// A trace that only hashes (and keeps the recent lines).
    #[must_use]
    pub fn hashing() -> Self {
        Self {
            hash: StepHash::default(),
            lines: 0,
            recent: VecDeque::with_capacity(RECENT),
            spare: Vec::new(),
            out: None,
            json: Vec::new(),
            write_error: None,
        }
    }

    /// A trace that also writes every line to `out`.
    #[must_use]
    pub fn writing(out: Box<dyn Write>) -> Self {
        Self {
            out: Some(out),
            ..Self::hashing()
        }
    }

    /// Records one step: hashes its compact form, keeps it among the recent steps, and writes it
    /// as a JSON line if a file is open. A step serde cannot write is left out of all three.
    pub(crate) fn record<T: Serialize + ?Sized>(&mut self, step: &T) {
        let mut form = std::mem::take(&mut self.spare);
        form.clear();
        if compact::encode(step, &mut form).is_err() {
            self.spare = form;
            return;
        }
        self.hash.step(&form);
        self.lines += 1;
        if self.recent.len() == RECENT {
            self.spare = self.recent.pop_front().unwrap_or_default();
        }
        self.recent.push_back(form);
        if let Some(out) = self.out.as_mut() {
            self.json.clear();
            let written = serde_json::to_writer(&mut self.json, step)
                .map_err(|e| e.to_string())
                .and_then(|()| {
                    self.json.push(b'\n');
                    out.write_all(&self.json).map_err(|e| e.to_string())
                });
            if let Err(e) = written {
                self.write_error.get_or_insert(e);
                self.out = None;
            }
        }
    }

    /// Writes the line that ends a run stopped by a violation ([`VIOLATION_LINE_PREFIX`]): to
    /// the file only, not into the hash, the line count or the recent lines, so the trace hash
    /// stays the hash of the run's steps. A replay writes it too, so one that does not stop at
    /// the same violation diverges at this line and shows it.
    pub(crate) fn close_with(&mut self, line: &str) {
        if let Some(out) = self.out.as_mut() {
            if let Err(e) = writeln!(out, "{line}") {
                self.write_error.get_or_insert_with(|| e.to_string());
                self.out = None;
            }
        }
    }

    /// The rolling hash of every line so far.
    #[must_use]
    pub(crate) fn hash(&self) -> u64 {
        self.hash.0
    }

    /// Lines recorded.
    #[must_use]
    pub(crate) fn lines(&self) -> u64 {
        self.lines
    }

    /// The last steps as JSON lines (as a trace file has them), oldest first.
    #[must_use]
    pub(crate) fn recent(&self) -> Vec<String> {
        self.recent
            .iter()
            .map(|form| compact::to_json(form))
            .collect()
    }

    /// Flushes the file, reporting the first write error if any.
    ///
    /// # Errors
    /// The first I/O error met while writing.
    pub(crate) fn finish(&mut self) -> Result<(), String> {
        if let Some(out) = self.out.as_mut() {
            out.flush().map_err(|e| e.to_string())?;
        }
        match self.write_error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// A trace sink that hands each complete line to `on_line`: for tools that read a run as it
/// goes (a timeline, a counter) instead of from a file.
pub struct LineSink<F: FnMut(&str)> {
    on_line: F,
    partial: Vec<u8>,
}

impl<F: FnMut(&str)> LineSink<F> {
    /// Calls `on_line` with every line written, without its newline.
    pub fn new(on_line: F) -> Self {
        Self {
            on_line,
            partial: Vec::new(),
        }
    }
}

impl<F: FnMut(&str)> Write for LineSink<F> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        for &b in buf {
            if b == b'\n' {
                (self.on_line)(&String::from_utf8_lossy(&self.partial));
                self.partial.clear();
            } else {
                self.partial.push(b);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_that_differ_anywhere_hash_apart_and_the_file_gets_json_lines() {
        let steps = |last: &str| {
            let file = std::rc::Rc::new(std::cell::RefCell::new(String::new()));
            let written = std::rc::Rc::clone(&file);
            let mut t = Trace::writing(Box::new(LineSink::new(move |line: &str| {
                let mut f = written.borrow_mut();
                f.push_str(line);
                f.push('\n');
            })));
            t.record(&serde_json::json!({"t": 1, "ev": "a"}));
            t.record(&serde_json::json!({"t": 2, "ev": last}));
            let text = file.borrow().clone();
            (t.hash(), t.recent(), text)
        };
        let (h1, recent, text) = steps("b");
        let (h2, ..) = steps("c");
        let (h3, ..) = steps("b");
        assert_ne!(h1, h2);
        assert_eq!(h1, h3);
        assert_eq!(text, "{\"ev\":\"a\",\"t\":1}\n{\"ev\":\"b\",\"t\":2}\n");
        assert_eq!(recent.join("\n") + "\n", text);
    }

    #[test]
    fn fnv_is_the_published_function() {
        let mut h = Fnv64::default();
        h.write(b"a");
        assert_eq!(h.value(), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn same_lines_same_hash_and_recent_window() {
        let mut a = Trace::hashing();
        let mut b = Trace::hashing();
        for i in 0..100 {
            a.record(&format!("line {i}"));
            b.record(&format!("line {i}"));
        }
        assert_eq!(a.hash(), b.hash());
        assert_eq!(a.recent().len(), RECENT);
        assert_eq!(a.recent().last().map(String::as_str), Some("\"line 99\""));
        b.record("one more");
        assert_ne!(a.hash(), b.hash());
    }
}
