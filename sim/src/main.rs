//! `podwarden-sim`: command-line front end of the podwarden simulator tools.
//!
//! ```text
//! podwarden-sim classify FILE     # FILE may be `-` for stdin
//! ```
//!
//! Exit codes: 0 when every event was read, 1 when some were not (the good ones are still
//! printed), 2 when the input cannot be read or the command line is wrong.

#![forbid(unsafe_code)]

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use podwarden_sim::classify;

/// Exit code: everything read and processed.
const EXIT_OK: u8 = 0;
/// Exit code: some lines (or list items) could not be read; the others were processed.
const EXIT_BAD_LINES: u8 = 1;
/// Exit code: the input cannot be read at all (clap uses 2 for usage errors too).
const EXIT_UNREADABLE: u8 = 2;

/// Tools around the podwarden executor core.
#[derive(Debug, Parser)]
#[command(name = "podwarden-sim", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// One subcommand each; `run`, `sweep`, `replay` … go here as they are added.
#[derive(Debug, Subcommand)]
enum Command {
    /// Classify every event of a pod watch stream with Airflow's watch table (rows 1–11).
    ///
    /// FILE is JSON Lines (`{"type":…,"object":…}` per line), a single Pod or watch event
    /// (possibly pretty-printed), a List/PodList, or pretty-printed watch events one after the
    /// other (`kubectl get pods -w -o json --output-watch-events`). Prints one JSON object per
    /// event on stdout; unreadable lines are reported on stderr as `line N: …`.
    Classify(ClassifyArgs),
}

#[derive(Debug, Args)]
struct ClassifyArgs {
    /// The input file, or `-` for standard input.
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Classify(args) => run_classify(&args),
    };
    ExitCode::from(code)
}

/// Reads FILE (or stdin for `-`) as UTF-8 text.
fn read_input(file: &PathBuf) -> Result<String, String> {
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

fn run_classify(args: &ClassifyArgs) -> u8 {
    let input = match read_input(&args.file) {
        Ok(text) => text,
        Err(message) => {
            eprintln!("podwarden-sim classify: {message}");
            return EXIT_UNREADABLE;
        }
    };
    let results = classify::classify_input(&input, &classify::default_fatal_reasons());
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let mut bad = 0usize;
    for result in &results {
        match result {
            Ok(event) => {
                if let Err(e) = writeln!(out, "{}", event.to_json_line()) {
                    return write_failed(&e);
                }
            }
            Err(error) => {
                // Keep stdout and stderr in input order when both go to the same terminal.
                if let Err(e) = out.flush() {
                    return write_failed(&e);
                }
                eprintln!("{error}");
                bad += 1;
            }
        }
    }
    if let Err(e) = out.flush() {
        return write_failed(&e);
    }
    if bad > 0 {
        eprintln!(
            "podwarden-sim classify: {bad} of {} events could not be read",
            results.len()
        );
        EXIT_BAD_LINES
    } else {
        EXIT_OK
    }
}

/// A closed pipe (`… | head`) is a normal end; anything else is reported.
fn write_failed(e: &io::Error) -> u8 {
    if e.kind() == io::ErrorKind::BrokenPipe {
        EXIT_OK
    } else {
        eprintln!("podwarden-sim classify: cannot write to standard output: {e}");
        EXIT_UNREADABLE
    }
}
