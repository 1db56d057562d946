//! World-level negative controls: every invariant below must fire when the policy under test
//! brings back the Airflow behaviour it guards against, and stay quiet with podwarden's default
//! policy on the same seed. A control that stops firing means the world no longer exercises the
//! failure (or the checker went blind); a default that fires means a regression.

use std::path::{Path, PathBuf};

use podwarden_sim::runner::{self, Report};
use podwarden_sim::scenario::{Cluster, Fault, Load, RandomFaults, Scenario};

/// Seeds every control is run with.
const SEEDS: std::ops::Range<u64> = 0..5;

fn shipped(name: &str) -> Scenario {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(format!("{name}.toml"));
    Scenario::load(&path.display().to_string())
        .unwrap_or_else(|e| panic!("shipped scenario {name} loads: {e}"))
}

fn run(scenario: &Scenario, seed: u64, policy: &str) -> Report {
    runner::run(scenario.clone(), Some(seed), Some(policy), None)
        .unwrap_or_else(|e| panic!("{} runs with policy {policy}: {e}", scenario.name))
}

/// Runs `scenario` with `bad` and with `default` on each seed: `bad` must violate `invariant`,
/// `default` must violate nothing. Returns both runs of each seed, `(bad, default)`, for further
/// checks.
fn control(
    scenario: &Scenario,
    seeds: std::ops::Range<u64>,
    bad: &str,
    invariant: &str,
) -> Vec<(Report, Report)> {
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
        // exits ("killed externally") and comes back with a new id; either way it is the
        // scheduler whose pods are taken, and never job 1 or 3 (both on true time).
        assert!(
            !detail.contains("from live scheduler 1 ")
                && !detail.contains("from live scheduler 3 "),
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

/// Pods that fail before start again and again (a missing image), a budget of 3 requeues, and
/// watches that expire often, so that relists replay pods still in the store.
///
/// On its own that is not enough: the executor deletes a pod that fails while Pending and keeps
/// its record (`finishing`) until the pod is gone, so no later event or relist of that pod is
/// read as a new failure, whatever the dedupe policy. The record goes early only when the
/// clean-up gives up, so the API server fails part of the requests for a while and
/// `pod_cleanup_max_retries = 0` gives up at the first failed delete; the pod stays Pending in
/// `ErrImagePull`/`ImagePullBackOff` and its next event (or a relist) replays its failure. Pod
/// creation is retried (`task_publish_max_retries`) so that a failed create does not end the try.
/// With `last_pod` dedupe a replay of pod A after pod B was requeued requeues A a second time.
fn replayed_prestart_failures() -> Scenario {
    let mut s = Scenario {
        name: "replayed-prestart-failures".into(),
        schedulers: 1,
        duration_s: 600.0,
        heal_s: 600.0,
        load: Load {
            tasks: 200,
            runtime_min_s: 10.0,
            runtime_max_s: 60.0,
            failure_rate: 0.0,
            ..Load::default()
        },
        cluster: Cluster {
            nodes: 4,
            node_capacity: 60,
            image_pull_permanent_failure_rate: 0.5,
            ..Cluster::default()
        },
        random_faults: RandomFaults {
            watch_expiries_per_hour: 360.0,
            ..RandomFaults::default()
        },
        // Ends well before the heal time so that later relists clean up what is left.
        faults: vec![Fault::ApiErrors {
            at_s: 0.0,
            duration_s: 400.0,
            code: 500,
            rate: 0.6,
        }],
        ..Scenario::default()
    };
    s.config.pod_launch_failure_retries = 3;
    s.config.pod_cleanup_max_retries = 0;
    s.config.task_publish_max_retries = 10;
    s
}

#[test]
fn last_pod_dedupe_requeues_replayed_failures() {
    let scenario = replayed_prestart_failures();
    scenario.validate().expect("valid scenario");
    for (bad, d) in control(&scenario, SEEDS, "legacy-dedupe", "requeue_bounded") {
        let detail = bad.outcome.violation.map(|v| v.detail).unwrap_or_default();
        assert!(
            detail.contains("requeued twice for the failure of pod"),
            "seed {}: a replayed failure is requeued again: {detail}",
            bad.seed
        );
        assert!(
            d.outcome.summary.requeues() > 0,
            "seed {}: the default policy requeues pre-start failures too\n{}",
            d.seed,
            runner::to_text(&d)
        );
    }
}

/// The recipe without API errors: every failed pod is deleted and its record kept until it is
/// gone, so nothing is replayed and `last_pod` dedupe cannot show. Kept as a record of why the
/// control above needs the API errors; if this starts firing, the world changed.
#[test]
fn without_api_errors_failed_pods_are_never_replayed() {
    let mut scenario = replayed_prestart_failures();
    scenario.faults.clear();
    scenario.config.pod_cleanup_max_retries = 5;
    scenario.config.task_publish_max_retries = 0;
    for seed in 0..2 {
        for policy in ["legacy-dedupe", "default"] {
            let r = run(&scenario, seed, policy);
            assert!(
                r.outcome.violation.is_none(),
                "seed {seed} policy {policy}\n{}",
                runner::to_text(&r)
            );
            assert!(r.outcome.summary.requeues() > 0);
        }
    }
}

/// `requeue_bounded` without any injected API error: pods rejected at admission stay in the
/// cluster as Failed, watch expiries replay them, and Airflow's last-pod dedupe requeues a try
/// a second time for a pod it already answered. The default dedupe (every pod, by uid) holds.
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
