//! What the simulator's process tests share: the binary, where to run it, and how to read what
//! it printed. Each test file uses the parts it needs (`mod support;`).
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `podwarden-sim` binary cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_podwarden-sim");

/// The workspace root, where the README's relative scenario paths work.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the sim crate sits in the workspace")
        .to_path_buf()
}

/// Runs the binary with `args` from the workspace root.
pub fn sim(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(workspace_root())
        .output()
        .expect("podwarden-sim runs")
}

/// Exit code, stdout and stderr of the binary run with `args` in `dir`.
pub fn sim_in(dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("podwarden-sim runs");
    outcome(&out)
}

/// A fresh directory for one test's files (removed by the test at its end).
pub fn scratch_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("podwarden-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    dir
}

/// Output bytes as text (the binary prints UTF-8 only).
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("UTF-8 output")
}

/// Exit code, stdout, stderr.
pub fn outcome(out: &Output) -> (Option<i32>, String, String) {
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

/// The value of the text report's `name` line (`name` padded to 24 columns, then the value).
pub fn field<'a>(report: &'a str, name: &str) -> Option<&'a str> {
    report.lines().find_map(|l| {
        l.strip_prefix(name)
            .filter(|rest| rest.starts_with(' '))
            .map(str::trim)
    })
}

/// The shipped scenario `name`, loaded from its file.
pub fn shipped(name: &str) -> podwarden_sim::scenario::Scenario {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(format!("{name}.toml"));
    podwarden_sim::scenario::Scenario::load(&path.display().to_string())
        .unwrap_or_else(|e| panic!("shipped scenario {name} loads: {e}"))
}

/// Runs `scenario` in process at `seed` under the preset `policy`.
pub fn run(
    scenario: &podwarden_sim::scenario::Scenario,
    seed: u64,
    policy: &str,
) -> podwarden_sim::runner::RunReport {
    podwarden_sim::runner::run(scenario.clone(), Some(seed), Some(policy), None)
        .unwrap_or_else(|e| panic!("{} runs with policy {policy}: {e}", scenario.name))
}
