//! Reproduce commands: the one command line, printed with every violation (by `run`, `sweep`,
//! `compare` and `shrink`), that runs the same world again from where the user is.
//!
//! It names the program that knows the world's policy ([`Extensions::program`]), the scenario
//! file as the user gave it (never rewritten, so a path relative to the user's directory stays
//! valid there), `--swarm` when the world is the swarm's draw over that file, the seed and the
//! policy. Words a shell would split or expand are single-quoted.
//!
//! [`Extensions::program`]: crate::extensions::Extensions::program

use std::borrow::Cow;

use crate::scenario::Scenario;

/// What stands for the scenario file of a world that was built in code, not read from a file
/// (write it to one with [`crate::shrink::to_minimal_toml`] and name that file instead).
pub const NO_FILE: &str = "<world built in code: write it to a file with shrink::to_minimal_toml>";

/// The command that runs `scenario` with `seed` again and writes its trace to `trace.jsonl`.
#[must_use]
pub fn command(scenario: &Scenario, seed: u64) -> String {
    let program = scenario.extensions.program();
    let file = scenario
        .source
        .as_deref()
        .map_or(Cow::Borrowed(NO_FILE), shell_word);
    let swarm = if scenario.extensions.drawn_by_swarm() {
        " --swarm"
    } else {
        ""
    };
    format!(
        "{} run {file}{swarm} --seed {seed} --policy {} --trace trace.jsonl",
        shell_word(program),
        shell_word(&scenario.policy)
    )
}

/// `word` as one shell word: as it is when it holds only characters no POSIX shell treats
/// specially, else in single quotes (a quote inside written `'\''`).
#[must_use]
pub fn shell_word(word: &str) -> Cow<'_, str> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        Cow::Borrowed(word)
    } else {
        Cow::Owned(format!("'{}'", word.replace('\'', r"'\''")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_words_stay_and_others_are_quoted() {
        assert_eq!(
            shell_word("sim/scenarios/a-b_c.toml"),
            "sim/scenarios/a-b_c.toml"
        );
        assert_eq!(shell_word("my dir/x.toml"), "'my dir/x.toml'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word(""), "''");
        assert_eq!(shell_word("$HOME"), "'$HOME'");
    }

    #[test]
    fn the_command_names_the_file_as_given_the_swarm_seed_and_policy() {
        let mut s = Scenario {
            source: Some("../my scenarios/thrash.toml".into()),
            policy: "legacy-adoption".into(),
            ..Scenario::default()
        };
        assert_eq!(
            command(&s, 7),
            "podwarden-sim run '../my scenarios/thrash.toml' --seed 7 --policy legacy-adoption \
             --trace trace.jsonl"
        );
        s.extensions = s
            .extensions
            .clone()
            .with_program("my-lab")
            .drawn_by_swarm_of_source();
        assert_eq!(
            command(&s, 7),
            "my-lab run '../my scenarios/thrash.toml' --swarm --seed 7 --policy legacy-adoption \
             --trace trace.jsonl"
        );
        s.source = None;
        assert!(command(&s, 7).contains(NO_FILE));
    }
}
