//! The command line (`podwarden-sim`), as a library: [`Lab`] runs it, and a program of your own
//! can register policies and invariants of its own on it and get the whole command line for
//! them (`run`, `compare`, `sweep`, `shrink`, `replay`, `check-determinism`), with reproduce
//! commands that name that program.
//!
//! ```no_run
//! use std::sync::Arc;
//! use podwarden_core::policy::{FailureContext, Policies, RequeuePolicy};
//! use podwarden_sim::cli::Lab;
//! use podwarden_sim::extensions::CustomPolicy;
//!
//! #[derive(Debug)]
//! struct NoRequeueAfterOom;
//! impl RequeuePolicy for NoRequeueAfterOom {
//!     fn may_requeue(&self, f: &FailureContext<'_>) -> bool {
//!         f.details.container_reason() != Some("OOMKilled")
//!     }
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     // my-lab compare sim/scenarios/node-drain.toml --policy default --policy no-oom-requeue
//!     Lab::new("my-lab")
//!         .policy(CustomPolicy::new(
//!             "no-oom-requeue",
//!             Policies::new().requeue(Arc::new(NoRequeueAfterOom)),
//!         ))
//!         .main()
//! }
//! ```
//!
//! ```text
//! podwarden-sim run SCENARIO [--seed N] [--policy P] [--trace FILE] [--swarm] [--plot FILE.svg]
//! podwarden-sim compare SCENARIO --policy A --policy B [--seed N] [--plot FILE.svg] [--format json]
//! podwarden-sim sweep SCENARIO [--seeds A..B] [--jobs N] [--swarm] [--policy P] [--shard i/n]
//! podwarden-sim sweep --merge FILE… [--allow-partial]
//! podwarden-sim replay TRACE | --kube-watch FILE
//! podwarden-sim check-determinism SCENARIO [--seed N] [--policy P]
//! podwarden-sim shrink TRACE | SCENARIO [--seed N] [--swarm] [--policy P] [--out PREFIX]
//! podwarden-sim list
//! podwarden-sim classify FILE     # FILE may be `-` for stdin
//! podwarden-sim serve SCENARIO [--listen ADDR] [--db FILE] [--seed N] [--until-idle] [--speed X]
//! ```
//!
//! Every command's `--help` has the rest; `docs/simulator.md` the details.
//!
//! Exit codes: 0 when all went well; 1 when an invariant was violated or a run livelocked
//! (`run`, `compare`, `sweep`, `replay`) or some events could not be read (`classify`, the good
//! ones are still printed); 2 when an input cannot be read or is out of range, an output (a
//! file, standard output) cannot be written, or the command line is wrong. A closed pipe on
//! standard output ends a command quietly with its own verdict.

mod args;
mod check;
mod classify;
mod compare;
mod exit;
mod lab;
mod list;
mod output;
mod replay;
mod run;
#[cfg(feature = "serve")]
mod serve;
mod shrink;
mod sweep;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use self::args::{Cli, Command};
use self::exit::EXIT_UNREADABLE;
pub use self::lab::Lab;

impl Lab {
    /// The command line's parser, named for this program, its `--policy` help listing the
    /// presets and this program's own policies.
    fn command(&self) -> clap::Command {
        let policy_help = format!("Policy: {}", self.known_policies());
        let mut cmd = Cli::command().name(self.program.clone());
        for sub in ["run", "compare", "sweep", "shrink", "check-determinism"] {
            let help = policy_help.clone();
            cmd = cmd.mut_subcommand(sub, |c| c.mut_arg("policy", |a| a.help(help)));
        }
        cmd
    }

    /// Runs the command line on this process's arguments.
    #[must_use]
    pub fn main(&self) -> ExitCode {
        ExitCode::from(self.run(std::env::args_os()))
    }

    /// Runs the command line on `args` (the first is the program's name, as in `argv`) and
    /// returns the exit code; output goes to this process's stdout and stderr.
    pub fn run<I, T>(&self, args: I) -> u8
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let parsed = self
            .command()
            .try_get_matches_from(args)
            .and_then(|m| Cli::from_arg_matches(&m));
        let cli = match parsed {
            Ok(cli) => cli,
            Err(e) => {
                // Help and version go to stdout with 0; usage errors to stderr with 2.
                let _ = e.print();
                return u8::try_from(e.exit_code()).unwrap_or(EXIT_UNREADABLE);
            }
        };
        match cli.command {
            Command::Classify(args) => classify::run_classify(self, &args),
            #[cfg(feature = "serve")]
            Command::Serve(args) => serve::run_serve(self, &args),
            Command::Run(args) => run::run_scenario(self, &args),
            Command::Compare(args) => compare::run_compare(self, &args),
            Command::List => list::run_list(self),
            Command::Sweep(args) => sweep::run_sweep(self, &args),
            Command::Replay(args) => replay::run_replay(self, &args),
            Command::CheckDeterminism(args) => check::run_check(self, &args),
            Command::Shrink(args) => shrink::run_shrink(self, &args),
        }
    }
}

#[cfg(test)]
mod tests {
    use podwarden_core::policy::Policies;

    use super::Lab;
    use crate::extensions::CustomPolicy;
    use crate::scenario::ScenarioError;

    #[test]
    fn the_labs_help_and_unknown_policy_error_list_its_own_policies() {
        let lab = Lab::new("my-lab").policy(CustomPolicy::new("careful", Policies::new()));
        let mut cmd = lab.command();
        for sub in ["run", "compare", "sweep", "shrink", "check-determinism"] {
            let help = cmd
                .find_subcommand_mut(sub)
                .expect("a subcommand")
                .render_help()
                .to_string();
            assert!(
                help.contains("presets: default, airflow")
                    && help.contains("my-lab's own: careful"),
                "{sub}: {help}"
            );
        }
        let e = lab.describe(&ScenarioError::UnknownPolicy("carefull".into()));
        assert!(
            e.starts_with("unknown policy \"carefull\" (presets: default,")
                && e.ends_with("; my-lab's own: careful)"),
            "{e}"
        );
        // The plain program says what it always said.
        let plain = Lab::new("podwarden-sim");
        let e = plain.describe(&ScenarioError::UnknownPolicy("x".into()));
        assert_eq!(e, ScenarioError::UnknownPolicy("x".into()).to_string());
        let parsed = plain
            .command()
            .try_get_matches_from([
                "podwarden-sim",
                "check-determinism",
                "a.toml",
                "--policy",
                "airflow-10.25",
            ])
            .expect("check-determinism takes --policy");
        let (_, sub) = parsed.subcommand().expect("a subcommand");
        assert_eq!(
            sub.get_one::<String>("policy").map(String::as_str),
            Some("airflow-10.25")
        );
    }
}
