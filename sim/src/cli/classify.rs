//! `classify`: every event of a watch stream through the watch table.

use std::io::{self, Write};

use super::args::ClassifyArgs;
use super::exit::{EXIT_BAD_LINES, EXIT_OK, EXIT_UNREADABLE};
use super::lab::Lab;
use super::output::{read_input, write_failed};
use crate::classify;

pub(super) fn run_classify(lab: &Lab, args: &ClassifyArgs) -> u8 {
    let input = match read_input(&args.file) {
        Ok(text) => text,
        Err(message) => {
            eprintln!("{} classify: {message}", lab.program);
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
            "{} classify: {bad} of {} events could not be read",
            lab.program,
            results.len()
        );
        EXIT_BAD_LINES
    } else {
        EXIT_OK
    }
}
