//! Reading the input and writing the output of the commands: standard streams and files, a
//! closed pipe taken as a normal end.

use std::io::{self, BufRead, Write};
use std::path::PathBuf;

use super::exit::{EXIT_OK, EXIT_UNREADABLE};

/// Opens FILE (or stdin for `-`) to be read incrementally, with the name to give it in
/// messages (`standard input` for `-`).
pub(super) fn open_input(file: &PathBuf) -> Result<(Box<dyn BufRead>, String), String> {
    if file.as_os_str() == "-" {
        Ok((
            Box::new(io::BufReader::new(io::stdin())),
            "standard input".into(),
        ))
    } else {
        let name = file.display().to_string();
        std::fs::File::open(file)
            .map(|f| (Box::new(io::BufReader::new(f)) as Box<dyn BufRead>, name))
            .map_err(|e| format!("cannot read {}: {e}", file.display()))
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
