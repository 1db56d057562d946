//! Heap bytes the executor holds per tracked try, and what it holds once every try has ended.
//!
//! Counting allocator (`stats_alloc`): the net bytes the process holds are read at checkpoints
//! where nothing but the executor holds memory. Each try is driven to Running one at a time
//! (submit, create answered, a Running MODIFIED event), so no temporary survives a step; then
//! every try ends (Succeeded, the delete answered, the DELETED event).
//!
//! Target: at most 512 bytes per tracked try beyond the key's own strings (its dag, task and run
//! ids), and back to the empty executor's size at the end.
//!
//! ```text
//! cargo bench --bench core_memory
//! ```

mod support;
use support::key;

use podwarden::command::ApiCall;
use std::alloc::System;

use podwarden::{
    ApiOutcome, CommandKind, Config, EventType, Executor, Input, PodPhase, PodTemplate, PodView,
    Timestamp, WatchEvent,
};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Try `i`'s pod `name` as the API server reports it in `phase`.
fn tracked_pod(i: usize, name: &str, phase: PodPhase) -> PodView {
    let k = key(i);
    let mut pod = PodView::new("default", name);
    pod.uid = support::uid(name);
    pod.labels = k.to_labels();
    pod.annotations = k.to_annotations();
    pod.labels.insert("airflow-worker".into(), "5".into());
    pod.phase = Some(phase);
    pod
}

/// Net heap bytes held since `region` began.
fn held(region: &Region<'_, System>) -> i64 {
    let s = region.change();
    // A realloc's growth or shrink is already in `bytes_allocated` / `bytes_deallocated`.
    s.bytes_allocated as i64 - s.bytes_deallocated as i64
}

fn drain_answering(ex: &mut Executor, now: Timestamp) -> Option<PodView> {
    let mut created = None;
    let mut answers = Vec::new();
    while let Some(cmd) = ex.poll_command() {
        match &cmd.kind {
            CommandKind::Api(ApiCall::CreatePod { manifest }) => {
                let mut pod =
                    PodView::new(manifest.pod.namespace.clone(), manifest.pod.name.clone());
                pod.uid = support::uid(&manifest.pod.name);
                pod.labels = manifest.labels.clone();
                pod.annotations = manifest.annotations.clone();
                created = Some(pod);
                answers.push(cmd.id);
            }
            CommandKind::Api(ApiCall::DeletePod { .. })
            | CommandKind::Api(ApiCall::PatchLabels { .. }) => {
                answers.push(cmd.id);
            }
            _ => {}
        }
    }
    for id in answers {
        let _ = ex.handle_input(
            now,
            Input::ApiResult {
                id,
                outcome: ApiOutcome::Ok,
            },
        );
        while ex.poll_command().is_some() {}
    }
    created
}

fn event(ex: &mut Executor, now: Timestamp, kind: EventType, pod: PodView) {
    let _ = ex.handle_input(
        now,
        Input::Watch {
            event: WatchEvent::new(kind, pod),
        },
    );
}

fn measure(n: usize) {
    let config = Config {
        worker_pods_creation_batch_size: 1_000_000,
        api_qps: 1_000_000,
        api_burst: 1_000_000,
        ..Config::default()
    };
    let now = Timestamp(0);
    let region = Region::new(GLOBAL);
    let mut ex = Executor::new(config, "5", now).expect("valid config");
    // The start-up list, answered empty.
    let list = ex.poll_command().expect("the start-up list").id;
    let _ = ex.handle_input(
        now,
        Input::ApiResult {
            id: list,
            outcome: ApiOutcome::Listed {
                pods: vec![],
                resource_version: "1".into(),
            },
        },
    );
    while ex.poll_command().is_some() {}
    let empty = held(&region);
    let mut names: Vec<String> = Vec::with_capacity(n);
    let names_size = |names: &Vec<String>| -> i64 {
        (names.capacity() * size_of::<String>() + names.iter().map(String::capacity).sum::<usize>())
            as i64
    };
    let mut key_bytes = 0usize;
    for i in 0..n {
        // Time moves 1 ms a try, so the API budget (1,000,000 a second) never holds a command.
        let now = Timestamp(i as u64);
        let k = key(i);
        key_bytes += k.dag_id.len() + k.task_id.len() + k.run_id.len();
        let _ = ex.handle_input(
            now,
            Input::Submit {
                key: k,
                template: PodTemplate::default(),
            },
        );
        let mut pod = drain_answering(&mut ex, now).expect("a create");
        names.push(pod.name.clone());
        pod.phase = Some(PodPhase::Running);
        pod.resource_version = "2".into();
        event(&mut ex, now, EventType::Modified, pod);
        while ex.poll_command().is_some() {}
    }
    let tracking = held(&region) - names_size(&names);
    assert_eq!(ex.state_size().tasks, n);
    let per_try = (tracking - empty) as f64 / n as f64;
    let keys = key_bytes as f64 / n as f64;

    // The quiet path allocates nothing: a Running pod's MODIFIED event that changes only its
    // record (the resource version) is applied without one allocation or reallocation; only
    // the event itself is freed. Events are built before the counted region.
    let quiet: Vec<WatchEvent> = names
        .iter()
        .enumerate()
        .take(256)
        .map(|(i, name)| {
            let mut pod = tracked_pod(i, name, PodPhase::Running);
            pod.resource_version = "3".into();
            WatchEvent::new(EventType::Modified, pod)
        })
        .collect();
    let quiet_events = quiet.len();
    let quiet_region = Region::new(GLOBAL);
    for event in quiet {
        let _ = ex.handle_input(Timestamp(n as u64), Input::Watch { event });
        while ex.poll_command().is_some() {}
    }
    let quiet_stats = quiet_region.change();
    assert_eq!(
        (quiet_stats.allocations, quiet_stats.reallocations),
        (0, 0),
        "{quiet_events} quiet Running events allocated"
    );

    for (i, name) in names.iter().enumerate() {
        let now = Timestamp((n + i) as u64);
        let mut pod = tracked_pod(i, name, PodPhase::Succeeded);
        event(&mut ex, now, EventType::Modified, pod.clone());
        drain_answering(&mut ex, now);
        pod.deletion_timestamp = Some(now);
        event(&mut ex, now, EventType::Deleted, pod);
        while ex.poll_command().is_some() {}
    }
    let size = ex.state_size();
    assert_eq!((size.tasks, size.pods, size.awaiting_replies), (0, 0, 0));
    let after = held(&region) - names_size(&names);
    println!(
        "core_memory/{n}: {per_try:.0} bytes per tracked try ({keys:.0} of them the key's strings, \
         {beyond:.0} beyond); empty executor {empty} bytes, after every try ended {after} bytes \
         ({residue:+} bytes); {quiet_events} quiet Running events: 0 allocations",
        beyond = per_try - keys,
        residue = after - empty
    );
    drop(ex);
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run small then.
    let full = std::env::args().any(|a| a == "--bench");
    let sizes: &[usize] = if full {
        &[1_000, 100_000, 1_000_000]
    } else {
        &[1_000]
    };
    for &n in sizes {
        measure(n);
    }
}
