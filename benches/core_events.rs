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

use std::collections::HashMap;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use podwarden::{EventType, Input, PodPhase, Timestamp, WatchEvent};

mod support;
use support::executor_with;

/// The baseline's per-pod state: what a minimal hand-written tracker would keep.
struct Tracked {
    phase: Option<PodPhase>,
    resource_version: String,
}

fn bench_events(c: &mut Criterion) {
    let mut group = c.benchmark_group("core_events");
    for n in support::tracked_sizes() {
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
                    fresh(&events[next])
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
                    fresh(&events[next])
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

/// A copy of `event` with a pod of its own, as a host that decodes each event has: cloning the
/// event itself would share the pod (`Arc`), and the timed region would no longer free it.
fn fresh(event: &WatchEvent) -> WatchEvent {
    match event.pod() {
        Some((kind, pod)) => WatchEvent::new(kind, pod.clone()),
        None => event.clone(),
    }
}

criterion_group!(benches, bench_events);
criterion_main!(benches);
