//! Using the world as a library: build a scenario in Rust, step it, inspect it.

use podwarden_core::db::TaskState;
use podwarden_sim::scenario::{Fault, Load, Scenario};
use podwarden_sim::trace::Trace;
use podwarden_sim::World;

fn small() -> Scenario {
    Scenario {
        name: "small".into(),
        schedulers: 2,
        duration_s: 300.0,
        heal_s: 300.0,
        load: Load {
            tasks: 60,
            runtime_min_s: 10.0,
            runtime_max_s: 40.0,
            ..Load::default()
        },
        faults: vec![Fault::CrashScheduler {
            at_s: 100.0,
            scheduler: 0,
            restart_after_s: 30.0,
        }],
        ..Scenario::default()
    }
}

#[test]
fn step_and_inspect() {
    let mut world = World::new(small(), Some(3), Trace::hashing()).expect("valid");
    assert_eq!(world.live_schedulers(), ["1", "2"]);
    while world.now().0 < 60_000 {
        assert!(world.step(), "nothing fires this early");
    }
    assert!(world.pod_count() > 0, "pods run at one minute");
    assert!(
        world
            .task_states()
            .get(&Some(TaskState::Running))
            .copied()
            .unwrap_or(0)
            > 0
    );
    assert!(world
        .executor(0)
        .is_some_and(|ex| ex.state_size().tasks > 0));
    while world.now().0 < 110_000 {
        world.step();
    }
    assert_eq!(
        world.live_schedulers(),
        ["2"],
        "scheduler 0 crashed at 100 s"
    );
    while world.now().0 < 140_000 {
        world.step();
    }
    assert_eq!(
        world.live_schedulers(),
        ["3", "2"],
        "it came back with a new job id"
    );
    let outcome = world.run();
    assert!(outcome.violation.is_none(), "{:?}", outcome.violation);
    assert_eq!(outcome.summary.unfinished, 0);
}

#[test]
fn faults_after_the_heal_time_are_rejected() {
    let s = Scenario {
        heal_s: 50.0,
        ..small()
    };
    let err = World::new(s, None, Trace::hashing()).expect_err("the crash at 100 s is after heal");
    assert!(err.to_string().contains("heal_s"), "{err}");
}

/// The violation report's recent lines are rebuilt from the compact form the trace hashes; they
/// must read exactly as the trace file's last step lines (the file's final line is the violation).
#[test]
fn a_violations_recent_lines_are_the_trace_files_last_lines() {
    let scenario = Scenario::load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/legacy-thrash.toml"
    ))
    .expect("shipped scenario");
    let file = std::env::temp_dir().join(format!("recent-lines-{}.jsonl", std::process::id()));
    let out = std::fs::File::create(&file).expect("temp file");
    let outcome = World::new(scenario, Some(1), Trace::writing(Box::new(out)))
        .expect("valid")
        .run();
    let violation = outcome.violation.expect("legacy adoption thrashes");
    let text = std::fs::read_to_string(&file).expect("trace written");
    let _ = std::fs::remove_file(&file);
    let steps: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("{\"violation\""))
        .collect();
    assert_eq!(steps.len() as u64, outcome.trace_lines);
    assert_eq!(violation.recent_trace.len(), 40);
    assert_eq!(
        violation.recent_trace,
        steps[steps.len() - 40..].to_vec(),
        "recent lines differ from the file's"
    );
}
