//! World-level negative controls: every invariant below must fire when the policy under test
//! brings back the Airflow behaviour it guards against, and stay quiet with podwarden's default
//! policy on the same seed. A control that stops firing means the world no longer exercises the
//! failure (or the checker went blind); a default that fires means a regression.

mod support;

use std::path::Path;

use podwarden_sim::runner::{self, RunReport};
use podwarden_sim::scenario::{Cluster, Fault, Load, Scenario};
use podwarden_sim::sweep;
use support::{run, shipped};

/// Seeds every control is run with.
const SEEDS: std::ops::Range<u64> = 0..5;

/// The detail templates `docs/invariants.md` quotes in `invariant`'s section: backticked spans
/// with a `<placeholder>`, whitespace folded (a span may break across lines).
fn documented_details(invariant: &str) -> Vec<String> {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/invariants.md"),
    )
    .expect("docs/invariants.md");
    let start = doc
        .find(&format!("\n## {invariant}\n"))
        .unwrap_or_else(|| panic!("docs/invariants.md has a section `## {invariant}`"));
    let section = &doc[start + 4..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    section
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|span| span.contains('<'))
        .map(|span| span.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// Whether `detail` reads as `template`: its literal pieces in order, `<...>`, `[...]` and `, …`
/// standing for any text; the first piece starts the detail.
fn reads_as(template: &str, detail: &str) -> bool {
    let mut pieces = Vec::new();
    let mut rest = template.replace(", …", "<>").replace("[...]", "<>");
    while let Some(open) = rest.find('<') {
        let close = rest[open..].find('>').map_or(rest.len(), |c| open + c + 1);
        pieces.push(rest[..open].to_string());
        rest = rest[close..].to_string();
    }
    pieces.push(rest);
    let Some(first) = pieces.first() else {
        return false;
    };
    let Some(mut tail) = detail.strip_prefix(first.as_str()) else {
        return false;
    };
    for piece in &pieces[1..] {
        match tail.find(piece.as_str()) {
            Some(at) => tail = &tail[at + piece.len()..],
            None => return false,
        }
    }
    true
}

/// The violation's detail reads as one that `docs/invariants.md` quotes for its invariant.
fn assert_worded_as_documented(v: &podwarden_sim::invariants::Violation) {
    let templates = documented_details(&v.invariant);
    assert!(
        templates.iter().any(|t| reads_as(t, &v.detail)),
        "{}: the detail `{}` reads as none of docs/invariants.md's: {templates:#?}",
        v.invariant,
        v.detail
    );
}

#[test]
fn a_detail_reads_as_its_documented_template() {
    let t = "try <key> requeued <n> times with a budget of <b>";
    assert!(reads_as(
        t,
        "try d.t.r#1 requeued 3 times with a budget of 2"
    ));
    assert!(!reads_as(t, "try d.t.r#1 requeued 3 times, budget 2"));
    assert!(!reads_as(t, "try d.t.r#1 requeued 3 times"));
    assert!(reads_as(
        "<n> pods left at the end, e.g. [<name> (<phase>), …]",
        "1 pods left at the end, e.g. [p-1 (Running)]"
    ));
}

/// Runs `scenario` with `bad` and with `default` on each seed: `bad` must violate `invariant`,
/// `default` must violate nothing. Returns both runs of each seed, `(bad, default)`, for further
/// checks.
fn control(
    scenario: &Scenario,
    seeds: std::ops::Range<u64>,
    bad: &str,
    invariant: &str,
) -> Vec<(RunReport, RunReport)> {
    let mut runs = Vec::new();
    for seed in seeds {
        let r = run(scenario, seed, bad);
        let v = r.outcome.violation.as_ref().unwrap_or_else(|| {
            panic!(
                "{} seed {seed} policy {bad}: expected {invariant} to fire, all held\n{}",
                scenario.name,
                runner::to_text(&r)
            )
        });
        assert_eq!(
            v.invariant,
            invariant,
            "{} seed {seed} policy {bad}: wrong invariant fired\n{}",
            scenario.name,
            runner::to_text(&r)
        );
        assert_eq!(v.seed, seed);
        assert_worded_as_documented(v);
        let d = run(scenario, seed, "default");
        assert!(
            d.outcome.violation.is_none(),
            "{} seed {seed} policy default: expected all invariants to hold\n{}",
            scenario.name,
            runner::to_text(&d)
        );
        runs.push((r, d));
    }
    runs
}

#[test]
fn legacy_adoption_thrashes_live_schedulers_pods() {
    let scenario = shipped("legacy-thrash");
    for (_, d) in control(&scenario, SEEDS, "legacy-adoption", "no_thrash") {
        assert_eq!(
            d.outcome.summary.owner_patches(),
            0,
            "seed {}: the default policy relabels no pod of a live scheduler here\n{}",
            d.seed,
            runner::to_text(&d)
        );
    }
}

/// Three live schedulers, scheduler 1's clock 45 s behind from the start, and enough load that
/// every scheduler runs pods.
/// Airflow's written-timestamp rule reads the skewed scheduler's heartbeats as 45 s stale, past
/// `scheduler_health_check_threshold`, declares it dead and adopts its pods; the observed-change
/// rule sees its heartbeat move and keeps it alive.
fn clock_skew() -> Scenario {
    let mut s = Scenario {
        name: "clock-skew-in-code".into(),
        schedulers: 3,
        duration_s: 600.0,
        heal_s: 600.0,
        load: Load {
            tasks: 600,
            runtime_min_s: 10.0,
            runtime_max_s: 120.0,
            failure_rate: 0.0,
            ..Load::default()
        },
        cluster: Cluster {
            nodes: 6,
            node_capacity: 60,
            ..Cluster::default()
        },
        faults: vec![Fault::ClockSkew {
            at_s: 0.0,
            scheduler: 1,
            offset_ms: -45_000,
        }],
        ..Scenario::default()
    };
    s.config.orphaned_tasks_check_interval = 60.0;
    s
}

#[test]
fn timestamp_liveness_adopts_a_skewed_live_schedulers_pods() {
    let scenario = clock_skew();
    scenario.validate().expect("valid scenario");
    for (bad, d) in control(&scenario, SEEDS, "timestamp-liveness", "no_thrash") {
        let detail = bad.outcome.violation.map(|v| v.detail).unwrap_or_default();
        // Scheduler index 1 is the skewed one: job "2" at first. Marked failed by its peers it
        // exits ("killed externally") and comes back with a new job id; either way it is the
        // scheduler whose pods are taken (messages name schedulers by index, as the trace does).
        assert!(
            detail.contains("from live scheduler 1 (job "),
            "seed {}: the skewed scheduler's pods are the ones taken: {detail}",
            bad.seed
        );
        let skewed = d
            .outcome
            .summary
            .per_scheduler
            .get("2")
            .copied()
            .unwrap_or_default();
        assert!(
            skewed.creates > 0,
            "seed {}: the premise needs the skewed scheduler to run pods\n{}",
            d.seed,
            runner::to_text(&d)
        );
        assert_eq!(
            (
                d.outcome.summary.orphans_handed_over,
                d.outcome.summary.owner_patches()
            ),
            (0, 0),
            "seed {}: no scheduler dies, nothing is orphaned or relabelled\n{}",
            d.seed,
            runner::to_text(&d)
        );
    }
}

#[test]
fn no_requeue_spends_user_retries_on_prestart_kills() {
    let scenario = shipped("sigterm-storm");
    for (_, d) in control(
        &scenario,
        SEEDS,
        "no-requeue",
        "no_retry_for_prestart_failure",
    ) {
        assert!(
            d.outcome.summary.requeues() > 0,
            "seed {}: the default policy requeues the pre-start kills\n{}",
            d.seed,
            runner::to_text(&d)
        );
    }
}

#[test]
fn requeue_bounded_fires_on_replayed_admission_rejections() {
    let path = format!(
        "{}/scenarios/admission-rejects.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    let scenario = Scenario::load(&path).expect("shipped scenario");
    for seed in 0..3 {
        let bad =
            runner::run(scenario.clone(), Some(seed), Some("legacy-dedupe"), None).expect("runs");
        let fired = bad.outcome.violation.as_ref().map(|v| v.invariant.as_str());
        assert_eq!(fired, Some("requeue_bounded"), "seed {seed}");
        let good = runner::run(scenario.clone(), Some(seed), Some("default"), None).expect("runs");
        assert!(
            good.outcome.violation.is_none(),
            "seed {seed}: {:?}",
            good.outcome.violation
        );
        assert!(good.outcome.summary.requeues() > 0);
    }
}

/// Asserts that `scenario` (a deliberately wrong input, not a bad policy) makes `invariant` fire
/// with the default policy on seed 0.
fn fires_on_wrong_input(scenario: &Scenario, invariant: &str) {
    let r = run(scenario, 0, "default");
    let v = r.outcome.violation.as_ref().unwrap_or_else(|| {
        panic!(
            "{}: expected {invariant} to fire, all held\n{}",
            scenario.name,
            runner::to_text(&r)
        )
    });
    assert_eq!(v.invariant, invariant, "{}", runner::to_text(&r));
    assert_worded_as_documented(v);
}

/// `no_lost_task` fires when tasks are still running at the end check: no settle time after a
/// SIGTERM storm.
#[test]
fn no_lost_task_fires_without_settle_time() {
    let mut s = shipped("sigterm-storm");
    s.expect.lost_task_bound_s = 0.0;
    fires_on_wrong_input(&s, "no_lost_task");
}

/// `no_leaked_pod` fires when the zombie sweep is configured but never runs within the run: the
/// operator pods with stuck sidecars are left at the end.
#[test]
fn no_leaked_pod_fires_when_the_zombie_sweep_never_runs() {
    let mut s = shipped("kpo-zombies");
    s.config.kpo_zombie_pod_cleanup_interval = 100_000.0;
    fires_on_wrong_input(&s, "no_leaked_pod");
}

// ---- through chaos: each control switches one of podwarden's decisions back to Airflow's ----

/// Runs `scenario` on each seed twice with the default policy: once with `airflow_rule` applied
/// to its executor configuration (one decision switched back to Airflow's), which must violate
/// `invariant`, and once as it is, which must violate nothing.
fn switch_control(
    scenario: &Scenario,
    seeds: std::ops::Range<u64>,
    airflow_rule: impl Fn(&mut podwarden_core::Config),
    invariant: &str,
) {
    let mut bad = scenario.clone();
    airflow_rule(&mut bad.config);
    bad.name = format!("{} (switched)", scenario.name);
    for seed in seeds {
        let r = run(&bad, seed, "default");
        let v = r.outcome.violation.as_ref().unwrap_or_else(|| {
            panic!(
                "{} seed {seed}: expected {invariant} to fire, all held\n{}",
                bad.name,
                runner::to_text(&r)
            )
        });
        assert_eq!(v.invariant, invariant, "{}", runner::to_text(&r));
        assert_worded_as_documented(v);
        let d = run(scenario, seed, "default");
        assert!(
            d.outcome.violation.is_none(),
            "{} seed {seed}: expected all invariants to hold\n{}",
            scenario.name,
            runner::to_text(&d)
        );
    }
}

/// 3 schedulers, 900 tasks; the metadata DB down for five minutes, and meanwhile scheduler 0 cut
/// off from the API server, so its completed pods stay in the store while it lives.
fn db_outage() -> Scenario {
    let mut s = Scenario {
        name: "db-outage".into(),
        schedulers: 3,
        duration_s: 900.0,
        heal_s: 900.0,
        load: Load {
            tasks: 900,
            runtime_min_s: 30.0,
            runtime_max_s: 90.0,
            ..Load::default()
        },
        cluster: Cluster {
            nodes: 6,
            node_capacity: 60,
            ..Cluster::default()
        },
        faults: vec![
            Fault::DbOutage {
                at_s: 300.0,
                duration_s: 300.0,
            },
            Fault::Partition {
                at_s: 305.0,
                scheduler: 0,
                duration_s: 200.0,
            },
        ],
        ..Scenario::default()
    };
    s.config.orphaned_tasks_check_interval = 20.0;
    s
}

/// While heartbeats cannot be read, Airflow's completed-pod adoption falls back to excluding
/// only itself, and relabels a live (partitioned) peer's completed pods. podwarden waits.
#[test]
fn heartbeat_fallback_during_a_db_outage_thrashes_live_schedulers() {
    switch_control(
        &db_outage(),
        0..3,
        |c| c.adoption_without_heartbeats = podwarden_core::adoption::AdoptionFallback::ExcludeSelf,
        "no_thrash",
    );
}

/// A SIGTERM storm while the DB is down: the pre-start kills cannot be checked against the DB.
/// Failing them at once (Airflow: no second question) charges user retries; podwarden asks
/// again until the DB is back.
#[test]
fn failing_prestart_kills_while_the_db_is_down_spends_user_retries() {
    let mut s = shipped("sigterm-storm");
    s.faults.push(Fault::DbOutage {
        at_s: 290.0,
        duration_s: 120.0,
    });
    switch_control(
        &s,
        0..3,
        |c| c.pod_launch_failure_db_retry_timeout = 0.0,
        "no_retry_for_prestart_failure",
    );
}

/// 80 % of requests answered 429 for five minutes, with a SIGTERM storm: a clean-up that gives
/// up after five retries leaves Succeeded pods behind. podwarden never gives up on a pod it owns.
#[test]
fn a_clean_up_that_gives_up_under_rate_limiting_leaks_pods() {
    let s = Scenario {
        name: "rate-limited".into(),
        schedulers: 3,
        duration_s: 900.0,
        heal_s: 900.0,
        load: Load {
            tasks: 900,
            ..Load::default()
        },
        cluster: Cluster {
            nodes: 6,
            node_capacity: 80,
            ..Cluster::default()
        },
        faults: vec![
            Fault::ApiErrors {
                at_s: 200.0,
                duration_s: 300.0,
                code: 429,
                rate: 0.8,
            },
            Fault::SigtermStorm {
                at_s: 300.0,
                pods: 40,
            },
        ],
        ..Scenario::default()
    };
    switch_control(&s, 0..3, |c| c.pod_cleanup_max_retries = 5, "no_leaked_pod");
}

/// A flaky registry: a pod failed on `ErrImagePull` is still Pending, and its next pull may work.
/// Keeping it (Airflow) beside the try's requeued pod leaves two pods that could both start the
/// task; podwarden deletes it and creates the next pod only once the deletion is confirmed.
#[test]
fn keeping_a_failed_pending_pod_leaves_two_pods_that_could_start_one_try() {
    switch_control(
        &shipped("image-pull-flaky"),
        0..3,
        |c| c.delete_live_failed_pods = false,
        "no_double_execution",
    );
}

/// A stall of 45 s, past the liveness threshold, that ends by itself: a peer declares the
/// stalled scheduler dead and adopts its tries, whose pods were OOM-killed meanwhile. Resuming,
/// the stalled scheduler reports what it buffered, so the adopted tries' ends are reported twice;
/// podwarden holds those reports until its own job is seen running, and drops them once it sees
/// itself declared dead.
#[test]
fn a_scheduler_resuming_from_a_stall_reports_adopted_tries_twice() {
    let s = shipped("split-brain");
    switch_control(
        &s,
        0..3,
        |c| c.fence_reports_after_stall = false,
        "exactly_once_accounting",
    );
}

/// Airflow's rule after a 410 (`relist_after_watch_expiry = false`): the watch restarts from
/// resource version "0" without a list, so a pod deleted while the watch was down is never seen
/// gone, and its try stays tracked with no pod for good: `bounded_core_state` sees the executor
/// keep tries nothing justifies. Swarm seed 4 of `steady-ha` (one scheduler, a 289 s partition);
/// the default relists and holds on the same seed. Over swarm seeds 0..300 the switch breaks
/// `bounded_core_state` on 17 seeds and nothing else.
#[test]
fn airflows_watch_restart_from_zero_keeps_tries_whose_pods_vanished() {
    let mut airflow = shipped("steady-ha");
    airflow.config.relist_after_watch_expiry = false;
    let (world, draw) = sweep::swarm(&airflow, 4);
    let bad = runner::run(world, Some(4), None, None).expect("runs");
    let v = bad
        .outcome
        .violation
        .as_ref()
        .unwrap_or_else(|| panic!("expected bounded_core_state: {draw}"));
    assert_eq!(v.invariant, "bounded_core_state", "{draw}");
    assert_worded_as_documented(v);
    let (world, draw) = sweep::swarm(&shipped("steady-ha"), 4);
    let good = runner::run(world, Some(4), None, None).expect("runs");
    assert_eq!(good.outcome.violation, None, "{draw}");
}
