//! The lab's command line, driven in this process (its reports go to this test's stdout).

use super::*;
use std::path::PathBuf;

fn scenario(name: &str) -> String {
    format!("{}/scenarios/{name}.toml", env!("CARGO_MANIFEST_DIR"))
}

fn lab_run(args: &[&str]) -> u8 {
    lab().run(std::iter::once("policy_kit").chain(args.iter().copied()))
}

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("policy-kit-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        Self(dir)
    }
    fn path(&self, file: &str) -> String {
        self.0.join(file).display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn the_weak_requeue_rule_fails_where_ours_and_the_sound_one_hold_and_its_trace_replays() {
    let drain = scenario("node-drain");
    assert_eq!(lab_run(&["run", &drain, "--policy", "default"]), 0);
    assert_eq!(lab_run(&["run", &drain, "--policy", "no-oom-requeue"]), 0);
    let dir = Scratch::new("weak-requeue");
    let trace = dir.path("weak.jsonl");
    let code = lab_run(&[
        "run",
        &drain,
        "--policy",
        "no-disruption-requeue",
        "--trace",
        &trace,
    ]);
    assert_eq!(code, 1, "no_retry_for_prestart_failure fires");
    let header = std::fs::read_to_string(&trace).expect("a trace");
    assert!(
        header
            .lines()
            .next()
            .is_some_and(|h| h.contains(r#""policy":"no-disruption-requeue""#)),
        "the trace names the policy"
    );
    // The header names the policy; the lab attaches its code again, so the run matches.
    assert_eq!(lab_run(&["replay", &trace]), 0);
    // Shrinking keeps the policy in the smaller world it writes.
    let prefix = dir.path("small");
    assert_eq!(
        lab_run(&["shrink", &trace, "--out", &prefix, "--max-runs", "12"]),
        0
    );
    let small = std::fs::read_to_string(format!("{prefix}.toml")).expect("the shrunk world");
    assert!(
        small.contains(r#"policy = "no-disruption-requeue""#),
        "{small}"
    );
    assert_eq!(lab_run(&["run", &format!("{prefix}.toml")]), 1);
}

#[test]
fn compare_shows_the_weak_adoption_rule_leaking_pods() {
    let crash = scenario("scheduler-crash");
    let verdict = lab_run(&[
        "compare",
        &crash,
        "--policy",
        "default",
        "--policy",
        "keep-completed-pods",
    ]);
    assert_eq!(verdict, 1, "no_leaked_pod fires for keep-completed-pods");
    let costly = lab_run(&[
        "compare",
        &crash,
        "--policy",
        "default",
        "--policy",
        "leave-running-orphans",
    ]);
    assert_eq!(costly, 0, "resetting orphans costs time, breaks nothing");
}

#[test]
fn unknown_policies_and_bad_command_lines_exit_2() {
    let drain = scenario("node-drain");
    assert_eq!(lab_run(&["run", &drain, "--policy", "nope"]), 2);
    assert_eq!(lab_run(&["run"]), 2);
    assert_eq!(lab_run(&["--version"]), 0);
}
