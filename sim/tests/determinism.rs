//! Determinism of every shipped scenario: the same seed gives the same run (trace hash, summary,
//! verdict), another seed another trace; a trace written to a file is the hashed trace, byte for
//! byte. The scenario folder is read at run time, so a new scenario is covered without edits here.

use std::path::{Path, PathBuf};

use podwarden_sim::runner::{self, list, run, scenarios_dir, RunReport};
use podwarden_sim::scenario::Scenario;

const SEED: u64 = 7;
const OTHER_SEED: u64 = 8;

/// Every shipped scenario, loaded from its file: `(name, scenario)`.
fn shipped() -> Vec<(String, Scenario)> {
    let dir = scenarios_dir();
    let found = list(&dir).unwrap_or_else(|e| panic!("{} lists: {e}", dir.display()));
    let names: Vec<&str> = found.iter().map(|(n, _, _)| n.as_str()).collect();
    for expected in ["legacy-thrash", "sigterm-storm"] {
        assert!(
            names.contains(&expected),
            "{expected} is shipped in {}: {names:?}",
            dir.display()
        );
    }
    found
        .into_iter()
        .map(|(name, _, path)| {
            let scenario = Scenario::load(&path.display().to_string())
                .unwrap_or_else(|e| panic!("{} loads: {e}", path.display()));
            (name, scenario)
        })
        .collect()
}

#[test]
fn same_seed_same_run_other_seed_other_trace() {
    // One thread per scenario: the runs are independent, and the largest scenario dominates.
    let runs: Vec<(String, [RunReport; 3])> = std::thread::scope(|scope| {
        let handles: Vec<_> = shipped()
            .into_iter()
            .map(|(name, scenario)| {
                scope.spawn(move || {
                    let go = |seed| {
                        run(scenario.clone(), Some(seed), None, None)
                            .unwrap_or_else(|e| panic!("{name} runs: {e}"))
                    };
                    let reports = [go(SEED), go(SEED), go(OTHER_SEED)];
                    (name, reports)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a scenario run panicked"))
            .collect()
    });
    for (name, [a, b, c]) in runs {
        assert_eq!(a.seed, SEED, "{name}");
        assert_eq!(
            a.outcome.trace_hash, b.outcome.trace_hash,
            "{name} seed {SEED}: trace hashes differ"
        );
        assert_eq!(
            a.outcome.trace_lines, b.outcome.trace_lines,
            "{name} seed {SEED}"
        );
        assert_eq!(
            a.outcome.summary, b.outcome.summary,
            "{name} seed {SEED}: summaries differ"
        );
        assert_eq!(
            a.outcome.violation, b.outcome.violation,
            "{name} seed {SEED}: verdicts differ"
        );
        assert_eq!(a, b, "{name} seed {SEED}: reports differ");
        assert!(a.outcome.trace_lines > 0, "{name}: an empty trace");
        assert_eq!(c.seed, OTHER_SEED, "{name}");
        assert_ne!(
            a.outcome.trace_hash, c.outcome.trace_hash,
            "{name}: seeds {SEED} and {OTHER_SEED} give the same trace"
        );
    }
}

/// A fresh directory under the system temp dir, removed (with its files) on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = std::env::temp_dir().join(format!(
            "podwarden-sim-{tag}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).expect("temp dir created");
        Self(path)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn shipped_file(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(format!("{name}.toml"));
    Scenario::load(&path.display().to_string())
        .unwrap_or_else(|e| panic!("{} loads: {e}", path.display()))
}

/// A clean run (sigterm-storm) and one cut short by a violation (legacy-thrash): the file has
/// exactly `trace_lines` lines, is the same bytes twice, and its FNV-1a is the reported hash.
#[test]
fn written_trace_matches_the_hash_and_repeats_byte_for_byte() {
    let dir = TempDir::new("determinism");
    for (name, seed) in [("sigterm-storm", 3), ("legacy-thrash", 0)] {
        let scenario = shipped_file(name);
        let first = dir.join(&format!("{name}-1.jsonl"));
        let second = dir.join(&format!("{name}-2.jsonl"));
        let a = run(scenario.clone(), Some(seed), None, Some(&first))
            .unwrap_or_else(|e| panic!("{name} runs: {e}"));
        let b = run(scenario.clone(), Some(seed), None, Some(&second))
            .unwrap_or_else(|e| panic!("{name} runs: {e}"));
        let hashed =
            run(scenario, Some(seed), None, None).unwrap_or_else(|e| panic!("{name} runs: {e}"));
        assert_eq!(
            name == "legacy-thrash",
            a.outcome.violation.is_some(),
            "{name} seed {seed}\n{}",
            runner::to_text(&a)
        );

        let file_a = std::fs::read(&first).expect("trace written");
        let bytes_b = std::fs::read(&second).expect("trace written");
        assert!(file_a == bytes_b, "{name} seed {seed}: trace files differ");
        // A run cut short by a violation ends its file with the violation line, which is not
        // hashed; the steps before it are.
        let text = String::from_utf8(file_a.clone()).expect("UTF-8 trace");
        let last = text.lines().last().expect("a line");
        let bytes_a = match &a.outcome.violation {
            Some(v) => {
                assert!(
                    last.starts_with(podwarden_sim::trace::VIOLATION_LINE_PREFIX)
                        && last.contains(&v.invariant),
                    "{name}: the last line records the violation: {last}"
                );
                file_a[..file_a.len() - last.len() - 1].to_vec()
            }
            None => {
                assert!(!last.starts_with(podwarden_sim::trace::VIOLATION_LINE_PREFIX));
                file_a.clone()
            }
        };
        let lines = bytes_a.iter().filter(|&&b| b == b'\n').count() as u64;
        assert_eq!(lines, a.outcome.trace_lines, "{name}: lines in the file");
        assert!(
            bytes_a.ends_with(b"\n"),
            "{name}: the last line is complete"
        );
        for line in text.lines() {
            serde_json::from_str::<serde_json::Value>(line)
                .unwrap_or_else(|e| panic!("{name}: trace line is not JSON ({e}): {line}"));
        }

        // The hash is over the steps' compact form, not the file's bytes: the file's lines,
        // replayed, must give the same lines and the same hash.
        let replayed = podwarden_sim::replay::replay(
            std::io::BufReader::new(std::fs::File::open(&first).expect("trace written")),
            |_| {},
        )
        .expect("the trace replays");
        assert!(
            replayed.divergence.is_none(),
            "{name}: the replay diverges: {:?}",
            replayed.divergence
        );
        assert_eq!(
            replayed.hash, a.outcome.trace_hash,
            "{name}: the hash is the file's"
        );
        assert_eq!(a, b, "{name}: reports differ");
        assert_eq!(a, hashed, "{name}: writing the trace changes the run");
    }
}
