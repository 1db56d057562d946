//! Reproduce commands run as printed, from the user's own directory: the scenario path as the
//! user gave it (relative, with a space in it), `--swarm`, the seed and the policy. Each printed
//! line is split as a POSIX shell would and run again through the command line.

mod support;

use std::path::{Path, PathBuf};

use support::sim_in;

fn thrash_scenario() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/legacy-thrash.toml")
}

/// A fresh directory (with a space in its name) holding `my scenarios/thrash.toml`.
struct UserDir(PathBuf);

impl UserDir {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("podwarden {tag} {}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("my scenarios")).expect("temp dir");
        std::fs::copy(thrash_scenario(), dir.join("my scenarios/thrash.toml")).expect("copied");
        Self(dir)
    }

    fn sim(&self, args: &[&str]) -> (Option<i32>, String, String) {
        sim_in(&self.0, args)
    }
}

impl Drop for UserDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Splits a command line as a POSIX shell does for plain words, single quotes and `&&`
/// (returned as its own word).
fn shell_split(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    w.push(q);
                }
            }
            ' ' => words.extend(word.take()),
            '"' | '\\' | '$' | '`' => panic!("unexpected shell syntax in {line:?}"),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
}

/// The value after `label` on its line (`label` padded with spaces, then the value).
fn field<'a>(report: &'a str, label: &str) -> &'a str {
    report
        .lines()
        .find_map(|l| l.strip_prefix(label).filter(|r| r.starts_with(' ')))
        .map(str::trim)
        .unwrap_or_else(|| panic!("a {label:?} line in:\n{report}"))
}

/// Runs a printed reproduce line (the program named, then the command line) in `dir`.
fn run_printed(dir: &UserDir, line: &str) -> (Option<i32>, String, String) {
    let words = shell_split(line);
    assert_eq!(words[0], "podwarden-sim", "{line}");
    let args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
    dir.sim(&args)
}

#[test]
fn a_swarm_runs_reproduce_line_keeps_the_users_path_and_swarm_and_reproduces() {
    let dir = UserDir::new("reproduce-swarm");
    let args = [
        "run",
        "my scenarios/thrash.toml",
        "--swarm",
        "--seed",
        "0",
        "--policy",
        "legacy-adoption",
    ];
    let (code, first, stderr) = dir.sim(&args);
    assert_eq!(code, Some(1), "{first}\n{stderr}");
    let reproduce = field(&first, "reproduce");
    assert_eq!(
        reproduce,
        "podwarden-sim run 'my scenarios/thrash.toml' --swarm --seed 0 --policy \
         legacy-adoption --trace trace.jsonl"
    );
    let (code, again, stderr) = run_printed(&dir, reproduce);
    assert_eq!(code, Some(1), "{again}\n{stderr}");
    assert_eq!(field(&again, "invariants"), field(&first, "invariants"));
    assert!(
        field(&again, "invariants").starts_with("VIOLATED no_thrash at "),
        "{again}"
    );
    assert_eq!(field(&again, "trace hash"), field(&first, "trace hash"));
    assert!(
        dir.0.join("trace.jsonl").is_file(),
        "the trace is written where the user is"
    );

    // The sweep prints the same line for that seed.
    let (code, sweep, stderr) = dir.sim(&[
        "sweep",
        "my scenarios/thrash.toml",
        "--swarm",
        "--seeds",
        "0..1",
        "--policy",
        "legacy-adoption",
    ]);
    assert_eq!(code, Some(1), "{sweep}\n{stderr}");
    assert_eq!(field(&sweep, "  reproduce:"), reproduce, "{sweep}");
}

#[test]
fn a_plain_runs_and_a_shrinks_reproduce_lines_run_as_printed() {
    let dir = UserDir::new("reproduce-plain");
    let (code, first, stderr) = dir.sim(&["run", "my scenarios/thrash.toml", "--seed", "0"]);
    assert_eq!(code, Some(1), "{first}\n{stderr}");
    let reproduce = field(&first, "reproduce");
    assert_eq!(
        reproduce,
        "podwarden-sim run 'my scenarios/thrash.toml' --seed 0 --policy legacy-adoption \
         --trace trace.jsonl"
    );
    let (code, again, _) = run_printed(&dir, reproduce);
    assert_eq!(code, Some(1));
    assert_eq!(field(&again, "trace hash"), field(&first, "trace hash"));

    let (code, shrunk, stderr) = dir.sim(&[
        "shrink",
        "my scenarios/thrash.toml",
        "--seed",
        "0",
        "--max-runs",
        "3",
        "--seeds-per-candidate",
        "1",
        "--out",
        "my scenarios/small",
    ]);
    assert_eq!(code, Some(0), "{shrunk}\n{stderr}");
    let line = field(&shrunk, "reproduce");
    let (run, replay) = line.split_once(" && ").expect("run && replay");
    let (code, out, stderr) = run_printed(&dir, run);
    assert_eq!(code, Some(1), "{run}: {out}\n{stderr}");
    assert!(
        field(&out, "invariants").starts_with(&format!("VIOLATED {}", field(&shrunk, "invariant"))),
        "{out}"
    );
    let (code, out, stderr) = run_printed(&dir, replay);
    assert_eq!(code, Some(0), "{replay}: {out}\n{stderr}");
    assert!(out.starts_with("replay matches:"), "{out}");
}
