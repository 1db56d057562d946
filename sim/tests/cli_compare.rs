//! `compare`: columns sized to their cells (requeue-cause rows under `requeues`), each
//! violation with its time, detail and reproduce command, and `--format json`.

mod support;

use support::{sim_in, workspace_root};

/// Exit code, stdout and stderr of the binary run from the workspace root.
fn sim(args: &[&str]) -> (Option<i32>, String, String) {
    sim_in(&workspace_root(), args)
}

const STORM: [&str; 8] = [
    "compare",
    "sim/scenarios/sigterm-storm.toml",
    "--policy",
    "no-requeue",
    "--policy",
    "default",
    "--seed",
    "3",
];

#[test]
fn compare_aligns_every_row_and_prints_the_violation_in_full() {
    let (code, out, err) = sim(&STORM);
    assert_eq!(code, Some(1), "{out}\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "scenario sigterm-storm (seed 3)");
    // The second column starts where `default` starts on the policy row, on every row.
    let column = lines[1].find("default").expect("policy row");
    let table: Vec<&str> = lines[1..]
        .iter()
        .take_while(|l| !l.starts_with("no-requeue VIOLATED"))
        .copied()
        .collect();
    assert!(table.len() > 20, "{out}");
    for row in &table {
        let (before, cell) = row.split_at(column);
        assert!(before.ends_with("  "), "row {row:?} in:\n{out}");
        assert!(!cell.starts_with(' '), "row {row:?} in:\n{out}");
    }
    // A cause only the default policy requeued for sits under its `requeues` row.
    let requeues = table
        .iter()
        .position(|r| r.starts_with("requeues "))
        .expect("a requeues row");
    assert!(table[requeues + 1].starts_with("  "), "{out}");
    let left = lines[1].find("no-requeue").expect("policy row");
    assert!(table[requeues + 1][left..].starts_with("- "), "{out}");
    assert!(
        table[requeues + 1][column..].parse::<u64>().is_ok(),
        "{out}"
    );
    let verdict = table.last().expect("the invariants row");
    assert!(verdict.starts_with("invariants "), "{out}");
    assert_eq!(
        verdict[column..].split_whitespace().collect::<Vec<_>>(),
        ["all", "9", "held"]
    );
    let violation = lines[table.len() + 1];
    assert!(
        violation
            .starts_with("no-requeue VIOLATED no_retry_for_prestart_failure at 301020 ms: try "),
        "{out}"
    );
    assert_eq!(
        lines[table.len() + 2],
        "  reproduce: podwarden-sim run sim/scenarios/sigterm-storm.toml --seed 3 --policy \
         no-requeue --trace trace.jsonl"
    );
    assert_eq!(lines.len(), table.len() + 3, "{out}");
}

#[test]
fn compare_json_is_both_run_reports_in_order() {
    let mut args = STORM.to_vec();
    args.extend(["--format", "json"]);
    let (code, out, err) = sim(&args);
    assert_eq!(code, Some(1), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["scenario"], "sigterm-storm");
    assert_eq!(v["seed"], 3);
    let runs = v["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2);
    assert_eq!(
        (&runs[0]["policy"], &runs[1]["policy"]),
        (&"no-requeue".into(), &"default".into())
    );
    let violation = &runs[0]["outcome"]["violation"];
    assert_eq!(violation["invariant"], "no_retry_for_prestart_failure");
    assert_eq!(violation["at_ms"], 301_020);
    assert!(violation["reproduce"]
        .as_str()
        .is_some_and(|r| r.contains("--seed 3 --policy no-requeue")));
    assert!(runs[1]["outcome"]["violation"].is_null());
    // Each run is what `run --format json` prints for it.
    let (_, single, _) = sim(&[
        "run",
        "sim/scenarios/sigterm-storm.toml",
        "--policy",
        "default",
        "--seed",
        "3",
        "--format",
        "json",
    ]);
    let single: serde_json::Value = serde_json::from_str(&single).expect("JSON");
    assert_eq!(runs[1], single);
}
