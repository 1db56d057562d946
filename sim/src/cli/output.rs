//! Reading the input and writing the output of the commands: standard streams and files, a
//! closed pipe taken as a normal end.

use std::io::{self, Read, Write};
use std::path::PathBuf;

use super::exit::{EXIT_OK, EXIT_UNREADABLE};

/// Reads FILE (or stdin for `-`) as UTF-8 text.
pub(super) fn read_input(file: &PathBuf) -> Result<String, String> {
    if file.as_os_str() == "-" {
        let mut text = String::new();
        io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read standard input: {e}"))?;
        Ok(text)
    } else {
        std::fs::read_to_string(file).map_err(|e| format!("cannot read {}: {e}", file.display()))
    }
}

/// Writes `text` to standard output and flushes it, so that an error (a full disk) is seen
/// here and not lost when the process exits.
pub(super) fn print_out(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// Creates an output file before the work that fills it, so that a path that cannot be
/// written fails at once rather than after a long run.
pub(super) fn create_output(path: &std::path::Path) -> Result<std::fs::File, String> {
    std::fs::File::create(path).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Writes `text` to a file made by [`create_output`].
pub(super) fn fill_output(
    mut file: std::fs::File,
    path: &std::path::Path,
    text: &str,
) -> Result<(), String> {
    file.write_all(text.as_bytes())
        .and_then(|()| file.flush())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// A closed pipe (`… | head`) is a normal end; anything else is reported.
pub(super) fn write_failed(e: &io::Error) -> u8 {
    write_failed_with(e, EXIT_OK)
}

/// A closed pipe (`… | head`) keeps the command's own verdict (`code`); any other write error
/// is reported.
pub(super) fn write_failed_with(e: &io::Error, code: u8) -> u8 {
    if e.kind() == io::ErrorKind::BrokenPipe {
        code
    } else {
        eprintln!("podwarden-sim: cannot write to standard output: {e}");
        EXIT_UNREADABLE
    }
}
