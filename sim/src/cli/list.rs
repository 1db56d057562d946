//! `list`: the shipped scenarios (the copies compiled in) and the policies.

use super::exit::EXIT_OK;
use super::lab::Lab;
use super::output::{print_out, write_failed};
use crate::runner;

pub(super) fn run_list(lab: &Lab) -> u8 {
    let mut text: String = runner::shipped()
        .iter()
        .map(|(name, description)| format!("{name:<20} {description}\n"))
        .collect();
    text += &format!(
        "\npolicy presets: {}\n",
        crate::scenario::POLICIES.join(", ")
    );
    for (name, mine) in &lab.policies {
        text += &format!("policy of yours: {name} (on {})\n", mine.preset());
    }
    match print_out(&text) {
        Ok(()) => EXIT_OK,
        Err(e) => write_failed(&e),
    }
}
