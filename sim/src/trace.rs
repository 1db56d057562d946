//! The trace: one JSON line per world event, executor input and command, hashed as it is
//! written, so that two runs can be compared by one number and replayed line by line.

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
/// platforms (unlike `std`'s `DefaultHasher`).
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

/// How the last line of a trace that ended at a violation starts (`{"violation":{"invariant":…,
/// "at_ms":…,"detail":…}}`); no step line starts so (they start with `{"t":`), nor the header.
pub const VIOLATION_LINE_PREFIX: &str = "{\"violation\":";

/// Where trace lines go: always into the rolling hash and a short ring of recent lines (for
/// violation reports), and into a file when asked.
pub struct Trace {
    hash: Fnv64,
    lines: u64,
    recent: VecDeque<String>,
    out: Option<Box<dyn Write>>,
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
            hash: Fnv64::default(),
            lines: 0,
            recent: VecDeque::with_capacity(RECENT),
            out: None,
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

    /// Records one line (without its newline).
    pub(crate) fn record(&mut self, line: String) {
        self.hash.write(line.as_bytes());
        self.hash.write(b"\n");
        self.lines += 1;
        if let Some(out) = self.out.as_mut() {
            if let Err(e) = writeln!(out, "{line}") {
                self.write_error.get_or_insert_with(|| e.to_string());
                self.out = None;
            }
        }
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(line);
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
        self.hash.value()
    }

    /// Lines recorded.
    #[must_use]
    pub(crate) fn lines(&self) -> u64 {
        self.lines
    }

    /// The last lines, oldest first.
    #[must_use]
    pub(crate) fn recent(&self) -> Vec<String> {
        self.recent.iter().cloned().collect()
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
            a.record(format!("line {i}"));
            b.record(format!("line {i}"));
        }
        assert_eq!(a.hash(), b.hash());
        assert_eq!(a.recent().len(), RECENT);
        assert_eq!(a.recent().last().map(String::as_str), Some("line 99"));
        b.record("one more".into());
        assert_ne!(a.hash(), b.hash());
    }
}
