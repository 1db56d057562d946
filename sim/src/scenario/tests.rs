use podwarden_core::Config;

use super::*;

#[test]
fn parses_a_scenario_with_faults_and_rejects_typos() {
    let s: Scenario = toml::from_str(
        r#"
        name = "x"
        schedulers = 3
        [load]
        tasks = 10
        [config]
        pod_launch_failure_retries = 2
        [[faults]]
        kind = "drain_node"
        at_s = 60
        node = 1
        [[faults]]
        kind = "crash_scheduler"
        at_s = 30
        scheduler = 0
        restart_after_s = 10
        "#,
    )
    .unwrap();
    s.validate().unwrap();
    assert_eq!(s.faults.len(), 2);
    assert_eq!(s.config.pod_launch_failure_retries, 2);
    assert!(toml::from_str::<Scenario>("schedulerz = 3").is_err());
    assert!(toml::from_str::<Scenario>("[[faults]]\nkind = \"meteor\"\nat_s = 1").is_err());
    let bad = Scenario {
        schedulers: 0,
        ..Scenario::default()
    };
    assert!(matches!(
        bad.validate(),
        Err(ScenarioError::OutOfRange { .. })
    ));
    let bad = Scenario {
        policy: "yolo".into(),
        ..Scenario::default()
    };
    assert!(matches!(
        bad.validate(),
        Err(ScenarioError::UnknownPolicy(_))
    ));
}

/// `(TOML, field, allowed)`: each hostile value is refused, naming the field with its
/// position and the allowed range.
const HOSTILE: &[(&str, &str, &str)] = &[
    ("schedulers = 17", "schedulers", "1..=16"),
    ("[cluster]\nnodes = 0", "cluster.nodes", "1..=5000"),
    ("[cluster]\nnodes = 4294967295", "cluster.nodes", "1..=5000"),
    ("[cluster]\nnode_capacity = 100000", "cluster.node_capacity", "1..=10000"),
    ("[load]\ntasks = 4294967295", "load.tasks", "0..=2000000"),
    ("[load]\nretries = 4294967295", "load.retries", "0..=1000"),
    ("[load]\nruntime_min_s = 0", "load.runtime_min_s", "above 0"),
    ("[load]\nruntime_max_s = nan", "load.runtime_max_s", "30 days"),
    ("[load]\nfailure_rate = nan", "load.failure_rate", "0 to 1"),
    ("duration_s = inf", "duration_s", "30 days"),
    ("heal_s = 1e300", "heal_s", "0 to 2592000"),
    ("zombie_task_threshold_s = -1", "zombie_task_threshold_s", "above 0"),
    ("scheduler_loop_ms = 0", "scheduler_loop_ms", "10..=3600000"),
    ("heartbeat_ms = 0", "heartbeat_ms", "1..=3600000"),
    ("parallelism = 0", "parallelism", "1..=2000000"),
    ("[cluster]\nimage_pull_ms = 9223372036854775807", "cluster.image_pull_ms", "0..=3600000"),
    ("[cluster]\ntask_startup_ms = 3600001", "cluster.task_startup_ms", "0..=3600000"),
    ("[cluster]\nkubernetes_minor = 19", "cluster.kubernetes_minor", "20..=40"),
    ("[cluster]\nnode_monitor_grace_s = -1", "cluster.node_monitor_grace_s", "0 to 2592000"),
    ("[cluster]\ntoleration_s = 1e17", "cluster.toleration_s", "0 to 2592000"),
    ("[latency]\napi_ms = 9223372036854775807", "latency.api_ms", "0..=60000"),
    ("[latency]\nwatch_ms = 60001", "latency.watch_ms", "0..=60000"),
    ("[latency]\ndb_ms = 100000", "latency.db_ms", "0..=60000"),
    ("[expect]\nprestart_budget = 4294967295", "expect.prestart_budget", "0..=1000"),
    ("[expect]\nlost_task_bound_s = 1e17", "expect.lost_task_bound_s", "30 days"),
    ("[random_faults]\nsigterms_per_hour = inf", "random_faults.sigterms_per_hour", "0 to 100000"),
    (
        "heal_s = 2592000\n[random_faults]\npreemptions_per_hour = 100000",
        "random_faults.preemptions_per_hour",
        "at most 1000000 random faults",
    ),
    (
        "[config]\norphaned_tasks_check_interval = 1e300",
        "config.orphaned_tasks_check_interval",
        "30 days",
    ),
    (
        "[[faults]]\nkind = \"partition\"\nat_s = 10\nscheduler = 0\nduration_s = 1e17",
        "faults[0].duration_s",
        "0 to 2592000 (30 days)",
    ),
    (
        "[[faults]]\nkind = \"db_outage\"\nat_s = 10\nduration_s = 1\n[[faults]]\nkind = \"db_outage\"\nat_s = 10\nduration_s = -1",
        "faults[1].duration_s",
        "0 to 2592000",
    ),
    (
        "schedulers = 3\n[[faults]]\nkind = \"drain_node\"\nat_s = 1\nnode = 0\n[[faults]]\nkind = \"watch_expiry\"\nat_s = 1\nscheduler = 0\n[[faults]]\nkind = \"crash_scheduler\"\nat_s = 10\nscheduler = 5\nrestart_after_s = 1",
        "faults[2].scheduler is 5",
        "0..=2 (the scenario has 3 schedulers)",
    ),
    (
        "[[faults]]\nkind = \"drain_node\"\nat_s = 1\nnode = 4",
        "faults[0].node is 4",
        "0..=3 (the scenario has 4 nodes)",
    ),
    (
        "[[faults]]\nkind = \"node_loss\"\nat_s = 1\nnode = 0\nduration_s = inf\nreturns = true",
        "faults[0].duration_s",
        "30 days",
    ),
    (
        "[[faults]]\nkind = \"stall_scheduler\"\nat_s = 1\nscheduler = 0\nduration_s = -5",
        "faults[0].duration_s",
        "0 to 2592000",
    ),
    (
        "[[faults]]\nkind = \"crash_scheduler\"\nat_s = 1\nscheduler = 0\nrestart_after_s = 1e17",
        "faults[0].restart_after_s",
        "30 days",
    ),
    (
        "[[faults]]\nkind = \"clock_skew\"\nat_s = 1\nscheduler = 0\noffset_ms = -9223372036854775808",
        "faults[0].offset_ms is -9223372036854775808",
        "-2592000000..=2592000000",
    ),
    (
        "[[faults]]\nkind = \"clock_step\"\nat_s = 1\nscheduler = 0\noffset_ms = 2592000001",
        "faults[0].offset_ms",
        "-2592000000..=2592000000",
    ),
    (
        "[[faults]]\nkind = \"sigterm_storm\"\nat_s = 1\npods = 0",
        "faults[0].pods",
        "1..=2000000",
    ),
    (
        "[[faults]]\nkind = \"preempt\"\nat_s = 1\npods = 4294967295",
        "faults[0].pods",
        "1..=2000000",
    ),
    (
        "[[faults]]\nkind = \"api_errors\"\nat_s = 1\nduration_s = 10\ncode = 42\nrate = 0.5",
        "faults[0].code is 42",
        "100..=599",
    ),
    (
        "[[faults]]\nkind = \"api_errors\"\nat_s = 1\nduration_s = 10\ncode = 503\nrate = 1.5",
        "faults[0].rate",
        "0 to 1",
    ),
    (
        "[[faults]]\nkind = \"watch_expiry\"\nat_s = 700\nscheduler = 0",
        "faults[0].at_s is 700",
        "0 to heal_s (600)",
    ),
];

#[test]
fn every_hostile_value_is_refused_naming_the_field_and_its_range() {
    for (text, field, allowed) in HOSTILE {
        let s: Scenario = toml::from_str(text).unwrap_or_else(|e| panic!("{text:?} parses: {e}"));
        let err = s.validate().expect_err(text);
        let message = err.to_string();
        assert!(
            matches!(err, ScenarioError::OutOfRange { .. }),
            "{text:?}: {message}"
        );
        assert!(
            message.contains(field) && message.contains(allowed),
            "{text:?}: {message} should name {field:?} and {allowed:?}"
        );
    }
}

#[test]
fn the_edges_of_every_range_are_allowed() {
    let s: Scenario = toml::from_str(
        r#"
        schedulers = 16
        duration_s = 2592000
        heal_s = 2592000
        scheduler_loop_ms = 10
        heartbeat_ms = 3600000
        parallelism = 2000000
        zombie_task_threshold_s = 2592000
        [load]
        tasks = 0
        retries = 1000
        runtime_min_s = 2592000
        runtime_max_s = 2592000
        [cluster]
        nodes = 5000
        node_capacity = 10000
        image_pull_ms = 3600000
        task_startup_ms = 0
        kubernetes_minor = 40
        node_monitor_grace_s = 0
        toleration_s = 2592000
        [latency]
        api_ms = 60000
        watch_ms = 0
        db_ms = 60000
        [random_faults]
        sigterms_per_hour = 1388.8
        [expect]
        prestart_budget = 1000
        lost_task_bound_s = 2592000
        [[faults]]
        kind = "clock_skew"
        at_s = 2592000
        scheduler = 15
        offset_ms = -2592000000
        [[faults]]
        kind = "node_loss"
        at_s = 0
        node = 4999
        duration_s = 2592000
        [[faults]]
        kind = "api_errors"
        at_s = 0
        duration_s = 0
        code = 599
        rate = 1
        "#,
    )
    .unwrap();
    s.validate().unwrap();
}

#[test]
fn every_shipped_and_regression_scenario_is_within_the_ranges() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for dir in ["scenarios", "scenarios/scale", "tests/regressions"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                Scenario::load(&path.display().to_string())
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                n += 1;
            }
        }
    }
    assert!(n >= 17, "{n} scenarios");
}

#[test]
fn presets_switch_the_decisions_back_to_airflows() {
    use podwarden_core::adoption::AdoptionScope;
    for p in POLICIES {
        apply_policy(p, Config::default()).unwrap();
    }
    assert_eq!(
        apply_policy("legacy-adoption", Config::default())
            .unwrap()
            .adoption_scope,
        AdoptionScope::AllOthers
    );
    assert_eq!(
        apply_policy("no-requeue", Config::default())
            .unwrap()
            .pod_launch_failure_retries,
        0
    );
}
