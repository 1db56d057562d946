//! Cost of one watch event through the executor (classification, decision, command drain) with
//! 1,000, 100,000 and 1,000,000 tracked tries, against a baseline: one `HashMap<String, _>`
//! lookup-and-update per event on the same pod names.
//!
//! Both sides take the event by value and drop it, as a host hands over a decoded event; the
//! clone that makes each iteration's event is done outside the timed region
//! (`iter_batched`). Events cycle over 4,096 different tracked pods so that the measurement is
//! not one hot cache line. Keys are realistic: dag, task and run ids of 20 to 60 characters.
//!
//! ```text
//! cargo bench --bench core_events -- --warm-up-time 1 --measurement-time 4
//! ```

use podwarden::command::ApiCall;
use std::collections::HashMap;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use podwarden::{
    ApiOutcome, CommandKind, Config, EventType, Executor, Input, PodPhase, PodTemplate, PodView,
    TaskKey, Timestamp, WatchEvent,
};

/// Distinct pods the events cycle over.
const HOT_PODS: usize = 4_096;

/// The `i`-th try: ids of 20 to 60 characters, as real DAGs have.
fn key(i: usize) -> TaskKey {
    TaskKey::new(
        format!("customer_{:04}_daily_ingest_pipeline", i % 997),
        format!("extract_partition_{i:07}_to_warehouse"),
        "scheduled__2026-11-23T00:00:00+00:00",
        1,
    )
}

/// An executor tracking `n` running tries, and the Running pods of up to `HOT_PODS` of them.
fn executor_with(n: usize) -> (Executor, Vec<PodView>) {
    let config = Config {
        worker_pods_creation_batch_size: 1_000_000,
        api_qps: 1_000_000,
        api_burst: 1_000_000,
        ..Config::default()
    };
    let mut ex = Executor::new(config, "5", Timestamp(0)).expect("valid config");
    let stride = (n / HOT_PODS).max(1);
    let mut pods = Vec::new();
    let mut answers = Vec::new();
    for i in 0..n {
        ex.handle_input(
            Timestamp(0),
            Input::Submit {
                key: key(i),
                template: PodTemplate::default(),
            },
        )
        .expect("submit");
        while let Some(cmd) = ex.poll_command() {
            if let CommandKind::Api(ApiCall::CreatePod { manifest }) = &cmd.kind {
                if i % stride == 0 && pods.len() < HOT_PODS {
                    let mut pod =
                        PodView::new(manifest.pod.namespace.clone(), manifest.pod.name.clone());
                    pod.uid = format!("uid-{}", manifest.pod.name);
                    pod.labels = manifest.labels.clone();
                    pod.annotations = manifest.annotations.clone();
                    pod.phase = Some(PodPhase::Running);
                    pod.resource_version = "100".into();
                    pods.push(pod);
                }
            }
            if cmd.kind.expects_reply()
                && !matches!(cmd.kind, CommandKind::Api(ApiCall::ListPods { .. }))
            {
                answers.push(Input::ApiResult {
                    id: cmd.id,
                    outcome: ApiOutcome::Ok,
                });
            }
        }
    }
    for a in answers {
        let _ = ex.handle_input(Timestamp(0), a);
    }
    while ex.poll_command().is_some() {}
    (ex, pods)
}

/// The baseline's per-pod state: what a minimal hand-written tracker would keep.
struct Tracked {
    phase: Option<PodPhase>,
    resource_version: String,
}

fn bench_events(c: &mut Criterion) {
    let mut group = c.benchmark_group("core_events");
    for n in [1_000usize, 100_000, 1_000_000] {
        let (mut ex, pods) = executor_with(n);
        let events: Vec<WatchEvent> = pods
            .iter()
            .map(|p| WatchEvent::new(EventType::Modified, p.clone()))
            .collect();
        // A MODIFIED event of a Running pod changes only the resource version: every iteration
        // does the same work on a warm executor.
        let mut next = 0usize;
        group.bench_function(format!("executor/{n}"), |b| {
            b.iter_batched(
                || {
                    next = (next + 1) % events.len();
                    events[next].clone()
                },
                |event| {
                    let _ = ex.handle_input(Timestamp(1), Input::Watch { event });
                    while ex.poll_command().is_some() {}
                },
                BatchSize::SmallInput,
            );
        });

        let mut map: HashMap<String, Tracked> = HashMap::with_capacity(n);
        for i in 0..n {
            // Same number of entries, named like the executor's pods.
            map.insert(
                format!("{}-{i:08}", pods[i % pods.len()].name),
                Tracked {
                    phase: None,
                    resource_version: String::new(),
                },
            );
        }
        for p in &pods {
            map.insert(
                p.name.clone(),
                Tracked {
                    phase: None,
                    resource_version: String::new(),
                },
            );
        }
        let mut next = 0usize;
        group.bench_function(format!("hashmap_baseline/{n}"), |b| {
            b.iter_batched(
                || {
                    next = (next + 1) % events.len();
                    events[next].clone()
                },
                |event| {
                    if let WatchEvent::Modified { pod } = event {
                        if let Some(t) = map.get_mut(&pod.name) {
                            t.phase = pod.phase;
                            pod.resource_version.clone_into(&mut t.resource_version);
                        }
                    }
                },
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, bench_events);
criterion_main!(benches);
