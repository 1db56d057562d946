//! `podwarden-sim list`, `run` and `compare`, run as a process from the workspace root (where
//! the relative scenario paths of the README and of reproduction commands work): output, exit
//! codes, and the errors for a missing or mistyped scenario.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use podwarden_sim::invariants::INVARIANTS;
use podwarden_sim::runner;
use support::{field, outcome, scratch_dir, sim, sim_in, text, workspace_root, BIN};

const SIGTERM_STORM: &str = "sim/scenarios/sigterm-storm.toml";
const LEGACY_THRASH: &str = "sim/scenarios/legacy-thrash.toml";

/// `trace hash  0123456789abcdef (N lines)`: the hash.
fn trace_hash(report: &str) -> String {
    let value =
        field(report, "trace hash").unwrap_or_else(|| panic!("a trace hash line in:\n{report}"));
    let hash = value.split_whitespace().next().unwrap_or_default();
    assert!(
        hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()),
        "a 64-bit hex hash: {value:?}"
    );
    assert!(value.ends_with(" lines)"), "{value:?}");
    hash.to_string()
}

/// A file in a fresh temp directory, removed (with the directory) on drop.
struct TempFile {
    dir: PathBuf,
    path: PathBuf,
}

impl TempFile {
    fn new(name: &str, contents: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!(
            "podwarden-sim-cli-{}-{nanos}-{name}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir created");
        let path = dir.join(name);
        std::fs::write(&path, contents).expect("temp file written");
        Self { dir, path }
    }

    fn arg(&self) -> String {
        self.path.display().to_string()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn list_prints_every_shipped_scenario_from_any_directory() {
    let shipped = runner::list(&workspace_root().join("sim/scenarios")).expect("scenarios list");
    assert!(shipped.len() >= 2, "{shipped:?}");
    let elsewhere = scratch_dir("list-elsewhere");
    let (code, stdout, stderr) = sim_in(&elsewhere, &["list"]);
    let _ = std::fs::remove_dir_all(&elsewhere);
    assert_eq!(code, Some(0), "stderr: {stderr}");
    let (scenarios, policies) = stdout.split_once("\n\n").expect("scenarios, then policies");
    let listed: Vec<&str> = scenarios
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        policies.trim(),
        format!(
            "policy presets: {}",
            podwarden_sim::scenario::POLICIES.join(", ")
        ),
        "the plain binary knows the presets only"
    );
    for (name, description, _) in &shipped {
        assert!(
            listed.contains(&name.as_str()),
            "{name} missing from:\n{stdout}"
        );
        assert!(
            stdout.contains(description.as_str()),
            "{name}'s description missing"
        );
    }
    assert_eq!(listed.len(), shipped.len(), "{stdout}");
}

#[test]
fn run_prints_the_summary_verdict_and_trace_hash() {
    let (code, stdout, stderr) = outcome(&sim(&["run", SIGTERM_STORM, "--seed", "3"]));
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr: {stderr}");
    assert_eq!(INVARIANTS.len(), 9);
    assert!(
        stdout.contains(&format!("all {} held", INVARIANTS.len())),
        "{stdout}"
    );
    assert_eq!(
        field(&stdout, "scenario"),
        Some("sigterm-storm (seed 3, policy default)")
    );
    assert!(field(&stdout, "tasks").is_some_and(|t| t.starts_with("600 (")));
    let hash = trace_hash(&stdout);

    // The same command prints the same hash.
    let (_, again, _) = outcome(&sim(&["run", SIGTERM_STORM, "--seed", "3"]));
    assert_eq!(trace_hash(&again), hash);
}

#[test]
fn run_json_is_the_report() {
    let (code, stdout, stderr) = outcome(&sim(&[
        "run",
        SIGTERM_STORM,
        "--seed",
        "3",
        "--format",
        "json",
    ]));
    assert_eq!(code, Some(0), "stderr: {stderr}");
    let v: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("valid JSON ({e}):\n{stdout}"));
    assert_eq!(v["scenario"], "sigterm-storm");
    assert_eq!(v["seed"], 3);
    assert_eq!(v["policy"], "default");
    assert_eq!(v["outcome"]["summary"]["tasks"], 600, "{v:#}");
    assert_eq!(v["outcome"]["summary"]["unfinished"], 0);
    assert!(v["outcome"]["violation"].is_null(), "{v:#}");
    let (_, text_report, _) = outcome(&sim(&["run", SIGTERM_STORM, "--seed", "3"]));
    assert_eq!(
        v["outcome"]["trace_hash"].as_str(),
        Some(trace_hash(&text_report).as_str()),
        "text and JSON describe the same run"
    );
}

#[test]
fn run_with_a_violation_exits_1_and_its_reproduce_line_reproduces() {
    let (code, stdout, stderr) = outcome(&sim(&[
        "run",
        SIGTERM_STORM,
        "--seed",
        "3",
        "--policy",
        "no-requeue",
    ]));
    assert_eq!(code, Some(1), "stdout:\n{stdout}\nstderr: {stderr}");
    assert!(
        stdout.contains("VIOLATED no_retry_for_prestart_failure"),
        "{stdout}"
    );
    let reproduce =
        field(&stdout, "reproduce").unwrap_or_else(|| panic!("a reproduce line in:\n{stdout}"));
    assert!(
        reproduce.starts_with(&format!(
            "podwarden-sim run {SIGTERM_STORM} --seed 3 --policy no-requeue"
        )),
        "{reproduce}"
    );
    assert!(stdout.contains("last trace lines:"), "{stdout}");
    let hash = trace_hash(&stdout);

    // Run the printed command as printed, only with the trace sent to a temp file.
    let trace = TempFile::new("reproduce.jsonl", "");
    let mut args: Vec<String> = reproduce
        .split_whitespace()
        .skip(1)
        .map(str::to_string)
        .collect();
    if let Some(i) = args.iter().position(|a| a == "--trace") {
        args[i + 1] = trace.arg();
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, again, stderr) = outcome(&sim(&args));
    assert_eq!(code, Some(1), "{args:?}: {stderr}");
    assert_eq!(trace_hash(&again), hash, "{args:?} reproduces the run");
    assert_eq!(
        field(&again, "invariants"),
        field(&stdout, "invariants"),
        "the same violation"
    );
    let written = std::fs::read_to_string(&trace.path).expect("trace written");
    assert!(!written.is_empty());
}

#[test]
fn compare_shows_both_policies_and_exits_1_when_one_violates() {
    let (code, stdout, stderr) = outcome(&sim(&[
        "compare",
        LEGACY_THRASH,
        "--policy",
        "legacy-adoption",
        "--policy",
        "default",
    ]));
    assert_eq!(code, Some(1), "stdout:\n{stdout}\nstderr: {stderr}");
    assert!(
        stdout.starts_with("scenario legacy-thrash (seed "),
        "{stdout}"
    );
    let policies = field(&stdout, "policy").unwrap_or_default();
    let columns: Vec<&str> = policies.split_whitespace().collect();
    assert_eq!(columns, ["legacy-adoption", "default"], "{stdout}");
    let verdicts = field(&stdout, "invariants").unwrap_or_default();
    let (left, right) = verdicts
        .split_once("  ")
        .unwrap_or_else(|| panic!("two columns: {verdicts:?}"));
    assert_eq!(left.trim(), "VIOLATED no_thrash", "{stdout}");
    assert_eq!(right.trim(), "all 9 held", "{stdout}");
    let relabels = field(&stdout, "owner relabels").unwrap_or_default();
    let relabels: Vec<&str> = relabels.split_whitespace().collect();
    assert_eq!(relabels.len(), 2, "{stdout}");
    assert_eq!(relabels[1], "0", "default relabels nothing: {stdout}");
}

#[test]
fn a_missing_scenario_file_exits_2_naming_it() {
    let missing = "sim/scenarios/no-such-scenario.toml";
    for args in [
        vec!["run", missing],
        vec![
            "compare",
            missing,
            "--policy",
            "default",
            "--policy",
            "airflow-10.25",
        ],
    ] {
        let (code, stdout, stderr) = outcome(&sim(&args));
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert_eq!(stdout, "", "{args:?}");
        assert!(
            stderr.contains("cannot read") && stderr.contains(missing),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn a_typo_in_a_scenario_exits_2_naming_the_key() {
    for (name, contents, key, line) in [
        (
            "top.toml",
            "name = \"typo\"\nschedulerz = 3\n",
            "schedulerz",
            2,
        ),
        (
            "nested.toml",
            "name = \"typo\"\n\n[load]\ntaskz = 10\n",
            "taskz",
            4,
        ),
    ] {
        let file = TempFile::new(name, contents);
        let (code, stdout, stderr) = outcome(&sim(&["run", &file.arg()]));
        assert_eq!(code, Some(2), "{name}: {stderr}");
        assert_eq!(stdout, "", "{name}");
        assert!(
            stderr.contains(&format!("unknown field `{key}`")),
            "{name}: {stderr}"
        );
        assert!(
            stderr.contains(&file.arg()),
            "{name} names the file: {stderr}"
        );
        assert!(stderr.contains(&format!("line {line}")), "{name}: {stderr}");
    }
}

/// Names users type have one spelling each (kebab-case on the command line, snake_case for
/// TOML keys and values), and the other separator is accepted for the same thing: the run is
/// the one the canonical spelling gives, byte for byte, with a note for a respelled policy.
#[test]
fn names_written_with_the_other_separator_mean_the_same_run() {
    let canonical =
        "name = \"spelling\"\nschedulers = 2\nduration_s = 300\n\n[load]\ntasks = 40\n\n\
        [config]\nadoption_scope = \"dead_only\"\n\n\
        [[faults]]\nkind = \"sigterm_storm\"\nat_s = 60\npods = 5\n\n\
        [[faults]]\nkind = \"crash_scheduler\"\nat_s = 90\nscheduler = 1\nrestart_after_s = 30\n";
    let respelled = canonical
        .replace("dead_only", "dead-only")
        .replace("sigterm_storm", "sigterm-storm")
        .replace("crash_scheduler", "crash-scheduler");
    let a = TempFile::new("canonical.toml", canonical);
    let b = TempFile::new("respelled.toml", &respelled);
    let (code_a, out_a, err_a) = outcome(&sim(&["run", &a.arg(), "--policy", "legacy-adoption"]));
    let (code_b, out_b, err_b) = outcome(&sim(&["run", &b.arg(), "--policy", "legacy_adoption"]));
    assert_eq!(code_a, code_b, "{err_a}\n{err_b}");
    assert!(matches!(code_a, Some(0 | 1)), "{err_a}");
    assert_eq!(trace_hash(&out_a), trace_hash(&out_b));
    assert!(out_b.contains("policy legacy-adoption"), "{out_b}");
    assert!(
        err_b.contains("note: policy `legacy_adoption` is written `legacy-adoption`"),
        "{err_b}"
    );
    assert!(!err_a.contains("note:"), "{err_a}");
}

#[test]
fn replay_confirms_a_trace_and_finds_a_tampered_line() {
    let dir = scratch_dir("cli-replay");
    let trace = dir.join("trace.jsonl");
    let trace_s = trace.display().to_string();
    let (code, _, _) = outcome(&sim(&[
        "run",
        "sim/scenarios/sigterm-storm.toml",
        "--seed",
        "2",
        "--trace",
        &trace_s,
    ]));
    assert_eq!(code, Some(0));
    let (code, out, _) = outcome(&sim(&["replay", &trace_s]));
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("replay matches:"), "{out}");
    let text = std::fs::read_to_string(&trace).expect("trace");
    let mut lines: Vec<&str> = text.lines().collect();
    let changed = lines[100].replacen("\"t\":", "\"t\": ", 1);
    lines[100] = &changed;
    std::fs::write(&trace, lines.join("\n") + "\n").expect("write");
    let (code, out, _) = outcome(&sim(&["replay", &trace_s]));
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("diverges at line 101"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn check_determinism_compares_runs_in_and_across_processes() {
    let (code, out, _) = outcome(&sim(&[
        "check-determinism",
        "sim/scenarios/sigterm-storm.toml",
        "--seed",
        "5",
    ]));
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        out.lines()
            .filter(|l| l.starts_with("in process") || l.starts_with("separate process"))
            .count(),
        4
    );
    assert!(out.trim_end().ends_with("deterministic"), "{out}");
}

/// A swarm seed reruns with a trace (`run --swarm`), and that trace replays: its header's
/// scenario holds fault times like `401.00345823518325`, which must survive the JSON round trip
/// bit for bit (serde_json's `float_roundtrip`), or the replayed world differs from line 1.
#[test]
fn a_swarm_seed_reruns_with_a_trace_that_replays() {
    let dir = scratch_dir("cli-swarm");
    let trace = dir.join("trace.jsonl");
    let trace_s = trace.display().to_string();
    let (_, _, err) = outcome(&sim(&[
        "run",
        "sim/scenarios/steady-ha.toml",
        "--swarm",
        "--seed",
        "1993",
        "--trace",
        &trace_s,
    ]));
    assert!(err.contains("swarm: schedulers 3"), "{err}");
    let header = std::fs::read_to_string(&trace).expect("trace");
    let header = header.lines().next().expect("header line");
    // A fault time with many significant digits, the kind that must round-trip exactly.
    let long_float = header.split("\"at_s\":").skip(1).any(|rest| {
        let number: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        number.split_once('.').is_some_and(|(_, f)| f.len() >= 10)
    });
    assert!(long_float, "{header}");
    let (code, out, _) = outcome(&sim(&["replay", &trace_s]));
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("replay matches:"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn shrink_of_a_trace_writes_a_scenario_and_a_trace_that_reproduce() {
    let dir = scratch_dir("shrink");
    let prefix = dir.join("again");
    let out = sim(&[
        "shrink",
        "sim/tests/regressions/legacy-adoption-thrash.trace.jsonl",
        "--out",
        &prefix.display().to_string(),
        "--seeds-per-candidate",
        "2",
    ]);
    let (code, stdout, stderr) = outcome(&out);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert_eq!(field(&stdout, "invariant"), Some("no_thrash"), "{stdout}");
    let toml = prefix.with_extension("toml");
    let trace = prefix.with_extension("trace.jsonl");
    let run = sim(&["run", &toml.display().to_string()]);
    assert_eq!(run.status.code(), Some(1), "the shrunk case still fails");
    assert!(text(&run.stdout).contains("VIOLATED no_thrash"));
    let replay = sim(&["replay", &trace.display().to_string()]);
    assert_eq!(replay.status.code(), Some(0), "{}", text(&replay.stdout));
    // A trace names its world: scenario options are refused, not silently ignored.
    let refused = sim(&[
        "shrink",
        "sim/tests/regressions/legacy-adoption-thrash.trace.jsonl",
        "--seed",
        "3",
    ]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(text(&refused.stderr).contains("apply to a scenario file only"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn shrink_of_a_run_that_breaks_nothing_is_an_error() {
    let out = sim(&["shrink", SIGTERM_STORM, "--seed", "0"]);
    let (code, _, stderr) = outcome(&out);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("breaks no invariant: nothing to shrink"),
        "{stderr}"
    );
}

#[test]
fn replay_kube_watch_prints_decisions_per_event_and_one_requeue_for_a_sigterm_sequence() {
    let out = sim(&["replay", "--kube-watch", "sim/streams/sigterm-storm.jsonl"]);
    let (code, stdout, stderr) = outcome(&out);
    assert_eq!(code, Some(0), "{stderr}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON Lines"))
        .collect();
    assert_eq!(lines.len(), 22, "21 events and the summary");
    // The SIGTERM sequence of transform-orders (lines 11-13: MODIFIED, MODIFIED Failed,
    // DELETED Failed) is one requeue, at the first Failed event.
    let requeue_lines: Vec<u64> = lines
        .iter()
        .filter(|l| {
            l["pod"]
                .as_str()
                .is_some_and(|p| p.contains("transform-orders"))
                && l["decisions"]
                    .as_array()
                    .is_some_and(|d| d.iter().any(|c| c["command"] == "requeue"))
        })
        .map(|l| l["line"].as_u64().unwrap_or_default())
        .collect();
    assert_eq!(requeue_lines, [12]);
    let summary = &lines[21]["summary"];
    assert_eq!(summary["events"], 21);
    assert_eq!(summary["requeued"].as_array().map(Vec::len), Some(2));
    assert!(stderr.contains("2 requeues"), "{stderr}");
}

#[test]
fn replay_kube_watch_reports_malformed_lines_and_replays_the_rest() {
    let dir = scratch_dir("kube");
    let stream = std::fs::read_to_string(workspace_root().join("sim/streams/sigterm-storm.jsonl"))
        .expect("the fixture");
    let mut lines: Vec<&str> = stream.lines().collect();
    lines.insert(1, "{\"type\": \"MODIFIED\", \"object\": ");
    let path = dir.join("broken.jsonl");
    std::fs::write(&path, lines.join("\n")).expect("written");
    let out = sim(&["replay", "--kube-watch", &path.display().to_string()]);
    let (code, stdout, stderr) = outcome(&out);
    assert_eq!(code, Some(1), "bad lines exit 1");
    assert!(stderr.starts_with("line 2: "), "{stderr}");
    assert_eq!(
        stdout.lines().count(),
        22,
        "every other event, and the summary"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn compare_plot_draws_both_timelines_and_the_thrash_shows_only_under_legacy_adoption() {
    let dir = scratch_dir("plot");
    let svg = dir.join("thrash.svg");
    let out = sim(&[
        "compare",
        LEGACY_THRASH,
        "--policy",
        "legacy-adoption",
        "--policy",
        "default",
        "--plot",
        &svg.display().to_string(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the legacy run violates no_thrash"
    );
    let text = std::fs::read_to_string(&svg).expect("the SVG is written");
    assert!(text.starts_with("<svg") && text.trim_end().ends_with("</svg>"));
    let titles: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("font-size=\"14\" font-weight=\"bold\""))
        .collect();
    assert_eq!(titles.len(), 2, "one timeline per policy");
    assert!(
        titles[0].contains("policy legacy-adoption") && !titles[0].contains("— 0 owner changes")
    );
    assert!(titles[1].contains("policy default") && titles[1].contains("— 0 owner changes"));
    // The owner-change strip: a bar of a live owner's pods taken (thrash) in the first timeline
    // only, with the verdict and the violation marker inside its frame.
    let second = text.find(titles[1]).expect("second title");
    let live_bars = |s: &str| s.matches("from live owners</title>").count();
    assert!(
        live_bars(&text[..second]) >= 1,
        "a live-owner bar under legacy adoption"
    );
    assert!(text[..second].contains("◀ VIOLATED no_thrash at 300 s"));
    assert_eq!(
        live_bars(&text[second..]),
        0,
        "no owner change under default"
    );
    assert!(text[second..].contains("invariants all 9 held"));
    // On the pod lanes too (each a group titled with the pod's name, no space in it), a live
    // owner's pod taken is marked in the live-owner colour, under legacy adoption only.
    let live_marks = |s: &str| {
        s.split("<g><title>")
            .filter(|group| {
                group
                    .split("</title>")
                    .next()
                    .is_some_and(|t| !t.contains(' '))
            })
            .filter(|group| {
                let lane = group.split("</g>").next().unwrap_or_default();
                lane.contains("fill=\"#d81b60\"")
            })
            .count()
    };
    assert!(
        live_marks(&text[..second]) >= 1,
        "a live-owner mark on a pod lane"
    );
    assert_eq!(live_marks(&text[second..]), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_policy_of_your_own_is_unknown_to_the_plain_binary() {
    let (code, _, stderr) = outcome(&sim(&["run", SIGTERM_STORM, "--policy", "no-oom-requeue"]));
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("unknown policy \"no-oom-requeue\"")
            && stderr.contains("known only to the program that registers it"),
        "{stderr}"
    );
}

/// Runs the binary, killing it if it is still running after `secs` (a test of "fails at once"
/// must not wait for a long run to end).
fn sim_within(secs: u64, args: &[&str], stdout: std::process::Stdio) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(workspace_root())
        .stdout(stdout)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("podwarden-sim starts");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("{args:?} still running after {secs} s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// A world that takes minutes to run (two million tasks over a month): what fails at once
/// with it failed before running.
const HUGE: &str = "name = \"huge\"\nduration_s = 2592000\nheal_s = 0\n[load]\ntasks = 2000000\n";

/// A small world for sweeps and merges: a few tasks, a short run.
const TINY: &str = "name = \"tiny\"\nduration_s = 30\nheal_s = 30\n[load]\ntasks = 2\n\
                    [expect]\nlost_task_bound_s = 300\n";

#[test]
fn hostile_scenario_values_exit_2_at_once_naming_the_field_and_its_range() {
    for (name, body, message) in [
        (
            "skew.toml",
            "[[faults]]\nkind = \"clock_skew\"\nat_s = 10\nscheduler = 0\noffset_ms = -9223372036854775808\n",
            "faults[0].offset_ms is -9223372036854775808, allowed -2592000000..=2592000000",
        ),
        (
            "partition.toml",
            "[[faults]]\nkind = \"partition\"\nat_s = 10\nscheduler = 0\nduration_s = 1e17\n",
            "faults[0].duration_s is 100000000000000000, allowed 0 to 2592000 (30 days)",
        ),
        (
            "index.toml",
            "schedulers = 3\n[[faults]]\nkind = \"watch_expiry\"\nat_s = 1\nscheduler = 0\n\
             [[faults]]\nkind = \"watch_expiry\"\nat_s = 1\nscheduler = 1\n\
             [[faults]]\nkind = \"crash_scheduler\"\nat_s = 10\nscheduler = 5\nrestart_after_s = 1\n",
            "faults[2].scheduler is 5, allowed 0..=2 (the scenario has 3 schedulers)",
        ),
        (
            "tasks.toml",
            "[load]\ntasks = 4294967295\n",
            "load.tasks is 4294967295, allowed 0..=2000000",
        ),
    ] {
        let file = TempFile::new(name, body);
        let out = sim_within(20, &["run", &file.arg()], std::process::Stdio::piped());
        let (code, stdout, stderr) = outcome(&out);
        assert_eq!(code, Some(2), "{name}: {stderr}");
        assert_eq!(stdout, "", "{name}");
        assert!(
            stderr.contains(&format!("invalid scenario: {message}")),
            "{name}: {stderr}"
        );
    }
}

#[test]
fn a_trace_to_a_full_disk_fails_the_run_naming_the_file() {
    if !Path::new("/dev/full").exists() {
        return;
    }
    let (code, _, stderr) = outcome(&sim(&["run", SIGTERM_STORM, "--trace", "/dev/full"]));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot write /dev/full: No space left on device"),
        "{stderr}"
    );
}

#[test]
fn reports_and_pictures_to_a_full_disk_fail_the_command() {
    if !Path::new("/dev/full").exists() {
        return;
    }
    let full = || {
        std::process::Stdio::from(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .expect("/dev/full opens"),
        )
    };
    let tiny = TempFile::new("tiny.toml", TINY);
    let tiny = tiny.arg();
    for args in [
        vec!["run", tiny.as_str()],
        vec!["run", tiny.as_str(), "--format", "json"],
        vec!["sweep", tiny.as_str(), "--seeds", "0..2"],
        vec!["list"],
        vec![
            "compare",
            tiny.as_str(),
            "--policy",
            "default",
            "--policy",
            "airflow-10.25",
        ],
    ] {
        let (code, _, stderr) = outcome(&sim_within(60, &args, full()));
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("cannot write to standard output: No space left on device"),
            "{args:?}: {stderr}"
        );
    }
    let (code, _, stderr) = outcome(&sim(&["run", &tiny, "--plot", "/dev/full"]));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("cannot write /dev/full"), "{stderr}");
}

#[test]
fn output_paths_in_a_missing_directory_fail_before_the_run() {
    let huge = TempFile::new("huge.toml", HUGE);
    let missing =
        std::env::temp_dir().join(format!("podwarden-no-such-dir-{}", std::process::id()));
    let trace = missing.join("trace.jsonl").display().to_string();
    let svg = missing.join("run.svg").display().to_string();
    for (args, path) in [
        (
            vec!["run", huge.arg().leak() as &str, "--trace", &trace],
            &trace,
        ),
        (vec!["run", huge.arg().leak() as &str, "--plot", &svg], &svg),
        (
            vec![
                "compare",
                huge.arg().leak() as &str,
                "--policy",
                "default",
                "--policy",
                "airflow-10.25",
                "--plot",
                &svg,
            ],
            &svg,
        ),
    ] {
        let out = sim_within(20, &args, std::process::Stdio::piped());
        let (code, stdout, stderr) = outcome(&out);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert_eq!(stdout, "", "{args:?}");
        assert!(
            stderr.contains(&format!("cannot write {path}: No such file or directory")),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn sweep_refuses_no_jobs_caps_too_many_and_refuses_a_huge_range_but_runs_its_shard() {
    let tiny = TempFile::new("tiny.toml", TINY);
    let (code, _, stderr) = outcome(&sim(&[
        "sweep",
        &tiny.arg(),
        "--seeds",
        "0..2",
        "--jobs",
        "0",
    ]));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--jobs 0: give at least 1 worker thread"),
        "{stderr}"
    );

    let (code, stdout, stderr) = outcome(&sim_within(
        60,
        &[
            "sweep",
            &tiny.arg(),
            "--seeds",
            "0..2",
            "--jobs",
            "10000000",
        ],
        std::process::Stdio::piped(),
    ));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("--jobs 10000000 capped to "), "{stderr}");
    assert!(
        stdout.contains("seeds run                    2"),
        "{stdout}"
    );

    let (code, _, stderr) = outcome(&sim_within(
        20,
        &["sweep", &tiny.arg(), "--seeds", "0..18446744073709551615"],
        std::process::Stdio::piped(),
    ));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("is 18446744073709551615 seeds for this process, more than 10000000")
            && stderr.contains("--shard i/n"),
        "{stderr}"
    );

    // One shard of the whole u64 range: its seeds are computed, not listed.
    let (code, stdout, stderr) = outcome(&sim_within(
        60,
        &[
            "sweep",
            &tiny.arg(),
            "--seeds",
            "0..18446744073709551615",
            "--shard",
            "7/9223372036854775807",
            "--format",
            "json",
        ],
        std::process::Stdio::piped(),
    ));
    assert_eq!(code, Some(0), "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("a JSON report");
    assert_eq!(report["seeds_run"], 2, "{stdout}");
    assert_eq!(
        report["identity"]["shards"],
        serde_json::json!([7]),
        "{stdout}"
    );
}

#[test]
fn sweep_merge_refuses_duplicates_other_sweeps_and_missing_shards() {
    let dir = scratch_dir("merge");
    let tiny = TempFile::new("tiny.toml", TINY);
    let shard = |i: u32, policy: &str, name: &str| {
        let out = sim(&[
            "sweep",
            &tiny.arg(),
            "--seeds",
            "0..6",
            "--shard",
            &format!("{i}/3"),
            "--policy",
            policy,
            "--format",
            "json",
        ]);
        assert!(
            out.status.code().is_some_and(|c| c <= 1),
            "{}",
            text(&out.stderr)
        );
        let path = dir.join(name);
        std::fs::write(&path, &out.stdout).expect("shard report written");
        path.display().to_string()
    };
    let a = shard(0, "default", "a.json");
    let b = shard(1, "default", "b.json");
    let c = shard(2, "default", "c.json");
    let other = shard(1, "airflow-10.25", "other.json");

    let (code, stdout, stderr) = outcome(&sim(&["sweep", "--merge", &a, &b, &c]));
    assert!(code.is_some_and(|c| c <= 1), "{stderr}");
    assert!(
        stdout.contains("seeds run                    6"),
        "{stdout}"
    );
    assert!(
        stdout.contains("shards                       3 of 3 (seeds 0..6)"),
        "{stdout}"
    );

    let (code, stdout, stderr) = outcome(&sim(&["sweep", "--merge", &a, &b, &a, &c]));
    assert_eq!(code, Some(2), "{stdout}");
    assert!(
        stderr.contains(&format!("shard 0/3 given twice: {a} and {a}")),
        "{stderr}"
    );

    let (code, _, stderr) = outcome(&sim(&["sweep", "--merge", &a, &other, &c]));
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains(&format!(
            "{other} and {a} are not shards of one sweep: policy airflow-10.25 in {other}, default in {a}"
        )),
        "{stderr}"
    );

    let (code, _, stderr) = outcome(&sim(&["sweep", "--merge", &a, &c]));
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("1 of 3 shards missing: 1/3") && stderr.contains("--allow-partial"),
        "{stderr}"
    );
    let (code, stdout, stderr) = outcome(&sim(&["sweep", "--merge", &a, &c, "--allow-partial"]));
    assert!(code.is_some_and(|c| c <= 1), "{stderr}");
    assert!(
        stderr.contains("warning: 1 of 3 shards missing: 1/3"),
        "{stderr}"
    );
    assert!(
        stdout.contains("2 of 3 (seeds 0..6), missing: 1/3"),
        "{stdout}"
    );

    // A report written before reports carried their identity is refused, not guessed at.
    let mut old: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&a).expect("a.json")).expect("JSON");
    old.as_object_mut().expect("an object").remove("identity");
    let old_path = dir.join("old.json");
    std::fs::write(&old_path, old.to_string()).expect("old.json written");
    let old_path = old_path.display().to_string();
    let (code, _, stderr) = outcome(&sim(&["sweep", "--merge", &old_path, &b, &c]));
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains(&format!("{old_path}: this report does not say which sweep")),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
