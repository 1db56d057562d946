use super::report::list_shards;
use super::*;
use crate::scenario::Scenario;

#[test]
fn shards_parse_and_split_a_range_exactly() {
    assert_eq!("1/4".parse::<Shard>(), Ok(Shard { index: 1, count: 4 }));
    assert!("4/4".parse::<Shard>().is_err());
    assert!("x".parse::<Shard>().is_err());
    let base = Scenario {
        duration_s: 60.0,
        heal_s: 60.0,
        load: crate::scenario::Load {
            tasks: 5,
            ..Default::default()
        },
        ..Scenario::default()
    };
    let spec = |shard| SweepSpec {
        first: 10,
        end: 20,
        jobs: 2,
        shard,
        swarm: false,
        policy: None,
        progress: false,
    };
    let whole = sweep(base.clone(), &spec(None)).unwrap();
    let shards: Vec<NamedReport> = (0..3)
        .map(|i| {
            let r = sweep(base.clone(), &spec(Some(Shard { index: i, count: 3 }))).unwrap();
            (format!("shard-{i}.json"), r)
        })
        .collect();
    let mut merged = merge_reports(shards, false).unwrap().report;
    assert_eq!(merged.seeds_run, 10);
    let id = merged.identity.take().unwrap();
    assert_eq!((id.shard_count, id.shards), (3, vec![0, 1, 2]));
    assert_eq!(
        (id.first_seed, id.end_seed, &id.scenario_hash),
        (10, 20, &whole.identity.as_ref().unwrap().scenario_hash)
    );
    // Apart from which shards it holds, the merge is the whole sweep, figure for figure.
    assert_eq!(
        merged,
        SweepReport {
            identity: None,
            ..whole
        }
    );
}

fn tiny() -> Scenario {
    Scenario {
        duration_s: 30.0,
        heal_s: 30.0,
        load: crate::scenario::Load {
            tasks: 2,
            ..Default::default()
        },
        expect: crate::scenario::Expectations {
            lost_task_bound_s: 300.0,
            ..Default::default()
        },
        ..Scenario::default()
    }
}

fn spec(first: u64, end: u64, shard: Option<Shard>) -> SweepSpec {
    SweepSpec {
        first,
        end,
        jobs: 2,
        shard,
        swarm: false,
        policy: None,
        progress: false,
    }
}

#[test]
fn seeds_are_computed_not_listed_so_a_huge_range_costs_nothing_up_front() {
    let all = spec(0, u64::MAX, None);
    assert_eq!(all.seed_count(), u64::MAX);
    assert_eq!(all.seed(u64::MAX - 1), u64::MAX - 1);
    let shard = spec(
        0,
        u64::MAX,
        Some(Shard {
            index: 3,
            count: 1 << 40,
        }),
    );
    assert_eq!(shard.seed_count(), 16_777_216);
    assert_eq!(shard.seed(0), 3);
    assert_eq!(shard.seed(16_777_215), 3 + 16_777_215 * (1 << 40));
    for (first, end, index, count) in [(10, 20, 0, 3), (10, 20, 2, 3), (0, 2, 3, 4), (5, 6, 0, 1)] {
        let s = spec(first, end, Some(Shard { index, count }));
        let listed: Vec<u64> = (first..end)
            .filter(|x| (x - first) % count == index)
            .collect();
        let computed: Vec<u64> = (0..s.seed_count()).map(|i| s.seed(i)).collect();
        assert_eq!(computed, listed, "{first}..{end} shard {index}/{count}");
    }
    // A shard of a huge range runs only its own seeds.
    let report = sweep(tiny(), &spec(u64::MAX - 3, u64::MAX, None)).unwrap();
    assert_eq!(report.seeds_run, 3);
    assert_eq!(spec(5, 5, None).seed_count(), 0);
    assert_eq!(sweep(tiny(), &spec(5, 6, None)).unwrap().seeds_run, 1);
}

#[test]
fn merge_refuses_duplicates_other_sweeps_old_reports_and_missing_shards() {
    let shard = |i: u64, n: u64, s: &Scenario, end: u64| {
        sweep(s.clone(), &spec(0, end, Some(Shard { index: i, count: n }))).unwrap()
    };
    let base = tiny();
    let a = ("a.json".to_string(), shard(0, 3, &base, 6));
    let b = ("b.json".to_string(), shard(1, 3, &base, 6));
    let c = ("c.json".to_string(), shard(2, 3, &base, 6));
    let err = |reports: Vec<NamedReport>| merge_reports(reports, false).unwrap_err();

    let e = err(vec![a.clone(), b.clone(), ("b2.json".into(), b.1.clone())]);
    assert_eq!(e, "shard 1/3 given twice: b.json and b2.json");

    let mut other = base.clone();
    other.load.tasks = 3;
    let e = err(vec![a.clone(), ("x.json".into(), shard(1, 3, &other, 6))]);
    assert!(
        e.starts_with("x.json and a.json are not shards of one sweep: scenario contents"),
        "{e}"
    );

    let mut airflow = base.clone();
    airflow.policy = "airflow-10.25".into();
    let e = err(vec![a.clone(), ("p.json".into(), shard(1, 3, &airflow, 6))]);
    assert!(
        e.contains("policy airflow-10.25 in p.json, default in a.json"),
        "{e}"
    );

    let e = err(vec![a.clone(), ("r.json".into(), shard(1, 3, &base, 9))]);
    assert!(e.contains("seeds 0..9 in r.json, 0..6 in a.json"), "{e}");

    let e = err(vec![a.clone(), ("n.json".into(), shard(1, 4, &base, 6))]);
    assert!(e.contains("shard count 4 in n.json, 3 in a.json"), "{e}");

    let old = SweepReport {
        identity: None,
        ..a.1.clone()
    };
    let e = err(vec![("old.json".into(), old)]);
    assert!(
        e.starts_with("old.json: this report does not say which sweep"),
        "{e}"
    );

    let e = err(vec![a.clone(), c.clone()]);
    assert!(
        e.starts_with("1 of 3 shards missing: 1/3 (seeds 0..6, 4 seeds run)"),
        "{e}"
    );
    assert!(e.contains("--allow-partial"), "{e}");
    let partial = merge_reports(vec![a.clone(), c.clone()], true).unwrap();
    assert_eq!(partial.report.seeds_run, 4);
    assert!(partial.warning.unwrap().contains("missing: 1/3"));
    assert!(partial
        .report
        .to_text()
        .contains("2 of 3 (seeds 0..6), missing: 1/3"));

    // A merged report merges on (a merge of merges), and the whole sweep twice is refused.
    let ab = merge_reports(vec![a.clone(), b.clone()], true)
        .unwrap()
        .report;
    let all = merge_reports(vec![("ab.json".into(), ab), c.clone()], false).unwrap();
    assert_eq!((all.report.seeds_run, all.warning), (6, None));
    let whole = sweep(base.clone(), &spec(0, 6, None)).unwrap();
    let e = err(vec![
        ("w.json".into(), whole.clone()),
        ("w2.json".into(), whole),
    ]);
    assert_eq!(e, "the sweep of seeds 0..6 given twice: w.json and w2.json");
}

#[test]
fn swarm_draws_over_every_shipped_scenario_are_within_the_ranges() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path().display().to_string();
        if !path.ends_with(".toml") {
            continue;
        }
        let base = Scenario::load(&path).unwrap();
        for seed in 0..300 {
            let (s, line) = swarm(&base, seed);
            s.validate()
                .unwrap_or_else(|e| panic!("{path} seed {seed}: {e} ({line})"));
        }
    }
}

#[test]
fn missing_shards_are_found_from_the_gaps() {
    let id = |count, shards: Vec<u64>| SweepIdentity {
        shard_count: count,
        shards,
        ..SweepIdentity::default()
    };
    assert_eq!(id(3, vec![0, 2]).missing(10), (1, vec![1]));
    assert_eq!(id(3, vec![0, 1, 2]).missing(10), (0, vec![]));
    assert_eq!(id(5, vec![]).missing(2), (5, vec![0, 1]));
    assert_eq!(id(6, vec![1, 4]).missing(10), (4, vec![0, 2, 3, 5]));
    assert_eq!(
        id(u64::MAX, vec![0, 7]).missing(3),
        (u64::MAX - 2, vec![1, 2, 3])
    );
    assert_eq!(
        list_shards(id(1000, vec![5]).missing(2), 1000),
        "0/1000, 1/1000, and 997 more"
    );
}

#[test]
fn the_text_report_has_a_livelock_row_and_rows_for_your_invariants() {
    let mut r = SweepReport::default();
    r.violations.insert("livelock".into(), 2);
    r.violations.insert("my_rule".into(), 1);
    let text = r.to_text();
    assert!(
        text.contains("livelock                     2 violations"),
        "{text}"
    );
    assert!(
        text.contains("my_rule                      1 violations"),
        "{text}"
    );
    assert!(
        text.contains("no_thrash                    0 violations"),
        "{text}"
    );
}

#[test]
fn swarm_draws_are_seeded_and_valid() {
    let base = Scenario::default();
    for seed in 0..200 {
        let (s, line) = swarm(&base, seed);
        s.validate()
            .unwrap_or_else(|e| panic!("seed {seed}: {e} ({line})"));
        assert_eq!(swarm(&base, seed).1, line);
    }
    assert_ne!(swarm(&base, 1).1, swarm(&base, 2).1);
}

#[test]
fn a_swarm_keeps_the_files_faults_and_grows_the_world_to_hold_them() {
    use crate::scenario::Fault;
    let plain = Scenario {
        name: "mine".into(),
        source: Some("my.toml".into()),
        duration_s: 1_500.0,
        heal_s: 1_500.0,
        schedulers: 7,
        cluster: crate::scenario::Cluster {
            nodes: 10,
            ..Default::default()
        },
        ..Scenario::default()
    };
    let crash = Fault::CrashScheduler {
        at_s: 1_500.0,
        scheduler: 6,
        restart_after_s: 30.0,
    };
    let drain = Fault::DrainNode {
        at_s: 40.0,
        node: 9,
    };
    let with_faults = Scenario {
        faults: vec![crash.clone(), drain.clone()],
        ..plain.clone()
    };
    for seed in 0..50 {
        let (drawn, line) = swarm(&with_faults, seed);
        let (without, _) = swarm(&plain, seed);
        drawn
            .validate()
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert!(drawn.schedulers >= 7 && drawn.cluster.nodes >= 10, "{line}");
        assert!(drawn.heal_s >= 1_500.0, "{line}");
        assert_eq!(
            drawn.faults[drawn.faults.len() - 2..],
            [crash.clone(), drain.clone()]
        );
        // Faults read as a user writes them, never as Rust's debug form.
        assert!(
            line.contains("1500 s: crash_scheduler of scheduler 6, restart after 30 s; 40 s: drain_node of node 9]"),
            "{line}"
        );
        assert!(!line.contains('{'), "{line}");
        // What the floors do not touch is drawn exactly as without the file's faults.
        assert_eq!(drawn.load, without.load, "seed {seed}");
        assert_eq!(drawn.latency, without.latency, "seed {seed}");
    }
    // The sweep's results change with the file, and its header says what was kept.
    let spec = SweepSpec {
        swarm: true,
        ..spec(0, 2, None)
    };
    let a = sweep(plain.clone(), &spec).unwrap();
    let b = sweep(with_faults.clone(), &spec).unwrap();
    assert_ne!(
        (a.coverage.clone(), a.tasks, a.requeues),
        (b.coverage.clone(), b.tasks, b.requeues)
    );
    let text = b.to_text();
    assert!(
        text.contains(
            "swarm                        over my.toml with its 2 scheduled faults \
             (1500 s: crash_scheduler of scheduler 6, restart after 30 s; 40 s: drain_node of node 9); drawn per seed: schedulers"
        ),
        "{text}"
    );
    assert!(a
        .to_text()
        .contains("over my.toml with its 0 scheduled faults; drawn"));
}
