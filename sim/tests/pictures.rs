//! What `--plot` draws, and that drawing never changes the run: `run` and `compare` with and
//! without `--plot` print the same report and write the same trace, and a trace written beside a
//! picture replays.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_podwarden-sim");
const LEGACY_THRASH: &str = "sim/scenarios/legacy-thrash.toml";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the sim crate sits in the workspace")
        .to_path_buf()
}

fn sim(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(workspace_root())
        .output()
        .expect("podwarden-sim runs")
}

/// A fresh directory for one test's files (removed by the test at its end).
fn scratch_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("podwarden-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    dir
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("UTF-8 output")
}

#[test]
fn a_plot_never_changes_the_run_its_trace_or_the_comparison() {
    let dir = scratch_dir("plot-same-run");
    let path = |name: &str| dir.join(name).display().to_string();
    let (plain_trace, plotted_trace, svg) =
        (path("plain.jsonl"), path("plotted.jsonl"), path("run.svg"));
    let plain = sim(&["run", LEGACY_THRASH, "--trace", &plain_trace]);
    let plotted = sim(&[
        "run",
        LEGACY_THRASH,
        "--trace",
        &plotted_trace,
        "--plot",
        &svg,
    ]);
    assert_eq!(
        plain.status.code(),
        Some(1),
        "legacy adoption breaks no_thrash"
    );
    assert_eq!(plotted.status.code(), plain.status.code());
    assert_eq!(
        text(&plotted.stdout),
        text(&plain.stdout),
        "the same summary, verdict and trace hash"
    );
    let (a, b) = (
        std::fs::read(&plain_trace).expect("plain trace"),
        std::fs::read(&plotted_trace).expect("plotted trace"),
    );
    assert!(
        a == b,
        "the same trace bytes ({} vs {} bytes)",
        a.len(),
        b.len()
    );
    let replay = sim(&["replay", &plotted_trace]);
    assert_eq!(
        replay.status.code(),
        Some(0),
        "a trace written beside a picture replays: {}{}",
        text(&replay.stdout),
        text(&replay.stderr)
    );
    let compare = |plot: Option<&str>| {
        let mut args = vec![
            "compare",
            LEGACY_THRASH,
            "--policy",
            "legacy-adoption",
            "--policy",
            "default",
        ];
        if let Some(p) = plot {
            args.extend(["--plot", p]);
        }
        let out = sim(&args);
        (out.status.code(), text(&out.stdout))
    };
    let svg2 = path("compare.svg");
    assert_eq!(
        compare(Some(&svg2)),
        compare(None),
        "compare prints the same with a picture"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
