//! Cost of one watch event through the executor (classification, decision, command drain) with
//! a given number of tracked tasks. Issue "Performance and the real world" extends this to 1M
//! tracked tasks and a `HashMap` baseline; this first version establishes the harness.

use criterion::{criterion_group, criterion_main, Criterion};
use podwarden::{
    ApiOutcome, CommandKind, Config, EventType, Executor, Input, PodPhase, PodTemplate, PodView,
    TaskKey, Timestamp, WatchEvent,
};

/// An executor tracking `n` running tasks, and the pod of one of them.
fn executor_with(n: usize) -> (Executor, PodView) {
    let config = Config {
        worker_pods_creation_batch_size: 1_000_000,
        api_qps: 1_000_000,
        api_burst: 1_000_000,
        ..Config::default()
    };
    let mut ex = Executor::new(config, "5", Timestamp(0)).expect("valid config");
    let mut last = None;
    let mut answers = Vec::new();
    for i in 0..n {
        let key = TaskKey::new(
            format!("customer_{:04}_daily_ingest_pipeline", i % 997),
            format!("extract_partition_{i:07}_to_warehouse"),
            "scheduled__2026-11-23T00:00:00+00:00",
            1,
        );
        ex.handle_input(
            Timestamp(0),
            Input::Submit {
                key,
                template: PodTemplate::default(),
            },
        )
        .expect("submit");
        while let Some(cmd) = ex.poll_command() {
            if let CommandKind::CreatePod { manifest } = &cmd.kind {
                let mut pod =
                    PodView::new(manifest.pod.namespace.clone(), manifest.pod.name.clone());
                pod.labels = manifest.labels.clone();
                pod.annotations = manifest.annotations.clone();
                pod.phase = Some(PodPhase::Running);
                last = Some(pod);
            }
            if cmd.kind.expects_reply() && !matches!(cmd.kind, CommandKind::ListPods { .. }) {
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
    (ex, last.expect("at least one task"))
}

fn bench_events(c: &mut Criterion) {
    let mut group = c.benchmark_group("core_events");
    for n in [1_000usize, 10_000, 100_000] {
        // One executor, driven in place: a MODIFIED event of a Running pod changes nothing but
        // the resource version, so every iteration does the same work on a warm executor.
        let (mut ex, pod) = executor_with(n);
        let event = WatchEvent::new(EventType::Modified, pod);
        group.bench_function(format!("running_modified/{n}"), |b| {
            b.iter(|| {
                let _ = ex.handle_input(
                    Timestamp(1),
                    Input::Watch {
                        event: event.clone(),
                    },
                );
                while ex.poll_command().is_some() {}
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench_events);
criterion_main!(benches);
