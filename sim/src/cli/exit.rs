//! The exit codes, in one place: 0 when all went well, 1 for a violation or unreadable events
//! (the rest processed), 2 for an input that cannot be read or an output that cannot be written.

/// Exit code: everything read and processed.
pub(super) const EXIT_OK: u8 = 0;
/// Exit code: some lines (or list items) could not be read; the others were processed.
pub(super) const EXIT_BAD_LINES: u8 = 1;
/// Exit code: the input cannot be read at all (clap uses 2 for usage errors too).
pub(super) const EXIT_UNREADABLE: u8 = 2;
/// Exit code: an invariant was violated.
pub(super) const EXIT_VIOLATION: u8 = 1;
