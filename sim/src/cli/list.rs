//! `list`: the shipped scenarios and the policies.

use super::exit::{EXIT_OK, EXIT_UNREADABLE};
use super::lab::Lab;
use super::output::{print_out, write_failed};
use crate::runner;

pub(super) fn run_list(lab: &Lab) -> u8 {
    match runner::list(&runner::scenarios_dir()) {
        Ok(list) => {
            let mut text: String = list
                .iter()
                .map(|(name, description, _)| format!("{name:<20} {description}\n"))
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
        Err(e) => {
            eprintln!("{} list: {e}", lab.program);
            EXIT_UNREADABLE
        }
    }
}
