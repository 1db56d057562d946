//! `classify`: every event of a watch stream through the watch table.

use std::io::{self, Write};

use super::args::ClassifyArgs;
use super::exit::{EXIT_BAD_LINES, EXIT_OK, EXIT_UNREADABLE};
use super::lab::Lab;
use super::output::{open_input, write_failed};
use crate::classify;

pub(super) fn run_classify(lab: &Lab, args: &ClassifyArgs) -> u8 {
    let (input, name) = match open_input(&args.file) {
        Ok(opened) => opened,
        Err(message) => {
            eprintln!("{} classify: {message}", lab.program);
            return EXIT_UNREADABLE;
        }
    };
    let fatal_reasons = classify::default_fatal_reasons();
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let (mut bad, mut total) = (0usize, 0usize);
    // Printed as read: one document in memory at a time.
    for result in classify::classify_reader(input, &fatal_reasons) {
        let result = match result {
            Ok(result) => result,
            Err(e) => {
                if let Err(e) = out.flush() {
                    return write_failed(&e);
                }
                eprintln!("{} classify: cannot read {name}: {e}", lab.program);
                return EXIT_UNREADABLE;
            }
        };
        total += 1;
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
            "{} classify: {bad} of {total} events could not be read",
            lab.program
        );
        EXIT_BAD_LINES
    } else {
        EXIT_OK
    }
}
