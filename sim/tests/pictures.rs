//! What `--plot` draws, and that drawing never changes the run: `run` and `compare` with and
//! without `--plot` print the same report and write the same trace, and a trace written beside a
//! picture replays.

mod support;

use support::{scratch_dir, sim, text, workspace_root};

const LEGACY_THRASH: &str = "sim/scenarios/legacy-thrash.toml";

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

/// Runs a shipped scenario under `policy` (the library's `run`, as the CLI does).
fn report(name: &str, policy: &str) -> podwarden_sim::runner::RunReport {
    let path = workspace_root().join(name);
    let scenario = podwarden_sim::scenario::Scenario::load(&path.display().to_string())
        .expect("a shipped scenario");
    podwarden_sim::runner::run(scenario, None, Some(policy), None).expect("runs")
}

#[test]
fn owner_changes_say_whether_the_old_owner_was_alive() {
    let legacy = report(LEGACY_THRASH, "legacy-adoption");
    let default = report(LEGACY_THRASH, "default");
    let (l, d) = (&legacy.outcome.summary, &default.outcome.summary);
    assert_eq!(
        legacy
            .outcome
            .violation
            .as_ref()
            .map(|v| v.invariant.as_str()),
        Some("no_thrash")
    );
    assert!(l.owner_changes.from_live_owner >= 1, "{l:?}");
    assert_eq!(
        d.owner_changes.from_live_owner, 0,
        "the default never takes a live owner's pod"
    );
    assert!(default.outcome.violation.is_none());
    let text = podwarden_sim::runner::to_text(&legacy);
    assert!(
        text.contains(&format!(
            "  from live owners       {} (thrash)",
            l.owner_changes.from_live_owner
        )),
        "{text}"
    );
    let json = serde_json::to_value(&legacy).expect("JSON");
    assert_eq!(
        json["outcome"]["summary"]["owner_changes"]["from_live_owner"],
        l.owner_changes.from_live_owner
    );
    // Under a crash the default adopts from the dead owner: counted apart, no thrash.
    let crash = report("sim/scenarios/scheduler-crash.toml", "default");
    let c = &crash.outcome.summary.owner_changes;
    assert!(c.from_dead_owner > 0 && c.from_live_owner == 0, "{c:?}");
}

#[test]
fn schedulers_are_named_by_their_trace_index_with_their_job_and_restarts() {
    let crash = report("sim/scenarios/scheduler-crash.toml", "default");
    let text = podwarden_sim::runner::to_text(&crash);
    // Three schedulers, indexes 0..3 as trace lines say `"sched"`; index 1 crashes at 400 s
    // and restarts 120 s later as job 4.
    for line in [
        "scheduler 0              job 1: ",
        "scheduler 1              job 2: ",
        "scheduler 1 restart 1    job 4, restarted at 520 s: ",
        "scheduler 2              job 3: ",
    ] {
        assert!(text.contains(line), "{line:?} in\n{text}");
    }
    let jobs = crash.outcome.summary.schedulers.jobs();
    assert_eq!(jobs.len(), 4);
    assert_eq!(
        crash.outcome.summary.schedulers.name("4"),
        "scheduler 1 (job 4, restarted at 520 s)"
    );
    assert_eq!(jobs[1].stopped_ms, Some(400_000), "job 2 crashed at 400 s");
    let legacy = report(LEGACY_THRASH, "legacy-adoption");
    let v = legacy.outcome.violation.expect("no_thrash");
    // The trace line of the relabel says which scheduler sent it; the message names the same.
    let patch = v
        .recent_trace
        .iter()
        .rev()
        .find(|l| l.contains("\"patch_labels\"") && l.contains("\"ev\":\"api_request\""))
        .expect("the relabel's trace line");
    let sched: serde_json::Value = serde_json::from_str(patch).expect("a JSON line");
    let index = sched["sched"].as_u64().expect("its scheduler index");
    assert!(
        v.detail.starts_with(&format!("scheduler {index} (job ")),
        "{} vs {patch}",
        v.detail
    );
}

#[test]
fn failed_tries_are_named_with_their_cause_and_faults_with_what_they_did() {
    let storm = report("sim/scenarios/sigterm-storm.toml", "default");
    let s = &storm.outcome.summary;
    let retried = s.failed_tries.iter().filter(|f| f.retried).count() as u64;
    assert_eq!(
        retried, s.retries_consumed,
        "every consumed retry is listed"
    );
    assert_eq!(
        s.retries_by_cause.values().sum::<u64>(),
        s.retries_consumed,
        "and broken down by cause"
    );
    assert!(s.failed_tries.iter().all(|f| !f.cause.is_empty()));
    assert_eq!(s.fault_effects.len() as u64, s.faults);
    let hit: u64 = s.fault_effects.iter().map(|f| f.pods_hit).sum();
    assert!(hit > 0, "a SIGTERM storm hits pods: {:?}", s.fault_effects);
    let charged = s.failed_tries.iter().filter(|f| f.fault.is_some()).count() as u64;
    let cost: u64 = s.fault_effects.iter().map(|f| f.tries_cost).sum();
    assert_eq!(charged, cost, "each charged try is counted on its fault");
    let json = serde_json::to_value(&storm).expect("JSON");
    assert_eq!(
        json["outcome"]["summary"]["failed_tries"]
            .as_array()
            .map(Vec::len),
        Some(s.failed_tries.len()),
        "all failed tries in JSON"
    );
    let text = podwarden_sim::runner::to_text(&storm);
    assert!(text.contains("user retries by cause"), "{text}");
    assert!(text.contains("fault 1 "), "{text}");
}
