//! Cost of one whole task-try lifecycle through the public API, with 1,000, 100,000 and
//! 1,000,000 tries Running in the background, beside a floor measured in the same run.
//!
//! A lifecycle is what a host feeds the executor for one try: `Submit`, its `CreatePod`
//! answered, the pod's ADDED (Pending), MODIFIED (Running) and MODIFIED (Succeeded, or Failed
//! with exit code 1 for every other try), the clean-up answered, the DELETED event, and the
//! report drained. The requeue lifecycle adds a pod that fails before its task started while the
//! task is QUEUED (drained: `DisruptionTarget`, container never started): the DB question
//! answered QUEUED, the transparent requeue, its clean-up, and a second pod that runs to
//! Succeeded.
//!
//! Only the executor's own work is timed: the events are built from the `CreatePod` manifests
//! outside the timed region (as a host decodes them from the API server), then handed over by
//! value, so freeing them is timed. Submits and their create answers run in batches of
//! [`BATCH`] tries, then each try's events run in order; every lifecycle is checked (one report,
//! the try no longer tracked) after its batch.
//!
//! The floor does per input what a minimal tracker must: one lookup and update in a
//! `HashMap<String, _>` holding as many entries, on the same pod names, with no event to free.
//!
//! ```text
//! cargo bench --bench core_lifecycle -- --warm-up-time 1 --measurement-time 5
//! PODWARDEN_BENCH_TRACKED=100000 cargo bench --bench core_lifecycle -- "/lifecycle/"   # one size
//! ```

use std::collections::HashMap;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion, Throughput};
use podwarden::command::{ApiCall, DbQuery, Notice, PodManifest};
use podwarden::db::{DbOutcome, TaskState};
use podwarden::{
    ApiOutcome, CommandKind, ContainerState, ContainerStatus, EventType, Executor, Input,
    PodCondition, PodPhase, PodTemplate, PodView, TaskKey, Timestamp, WatchEvent,
};

mod support;
use support::{executor_with, key};

/// Tries submitted together before their events are fed.
const BATCH: usize = 64;

/// The executor, its clock, and what the host has seen of its commands.
struct Host {
    ex: Executor,
    now: Timestamp,
    /// `CreatePod` manifests not taken yet.
    created: Vec<PodManifest>,
    reports: usize,
    requeues: usize,
    /// Inputs handed to the executor.
    inputs: usize,
    /// What the DB answers about a try's state.
    db_state: TaskState,
    answers: Vec<Input>,
}

impl Host {
    fn new(ex: Executor) -> Self {
        Self {
            ex,
            now: Timestamp(0),
            created: Vec::new(),
            reports: 0,
            requeues: 0,
            inputs: 0,
            db_state: TaskState::Running,
            answers: Vec::new(),
        }
    }

    fn input(&mut self, input: Input) {
        self.inputs += 1;
        self.ex
            .handle_input(self.now, input)
            .expect("the lifecycle's inputs are valid");
        self.drain();
    }

    /// Drains the executor, answering every API call OK and every DB question with
    /// `db_state`, until it has nothing more to say.
    fn drain(&mut self) {
        loop {
            while let Some(cmd) = self.ex.poll_command() {
                match cmd.kind {
                    CommandKind::Api(ApiCall::CreatePod { manifest }) => {
                        self.created.push(manifest);
                        self.answers.push(ok(cmd.id));
                    }
                    CommandKind::Api(ApiCall::ListPods { .. }) => {
                        panic!("no relist in a steady lifecycle")
                    }
                    CommandKind::Api(_) => self.answers.push(ok(cmd.id)),
                    CommandKind::Db(DbQuery::QueryTaskStates { keys }) => {
                        let states = keys.into_iter().map(|k| (k, Some(self.db_state))).collect();
                        self.answers.push(Input::DbResult {
                            id: cmd.id,
                            outcome: DbOutcome::TaskStates { states },
                        });
                    }
                    CommandKind::Db(_) => panic!("no other DB question in a lifecycle"),
                    CommandKind::Notice(Notice::Report { .. }) => self.reports += 1,
                    CommandKind::Notice(Notice::Requeue { .. }) => self.requeues += 1,
                    CommandKind::Notice(_) => {}
                }
            }
            if self.answers.is_empty() {
                return;
            }
            for answer in std::mem::take(&mut self.answers) {
                self.inputs += 1;
                self.ex
                    .handle_input(self.now, answer)
                    .expect("answers match commands");
            }
        }
    }

    /// Fires the executor's timers that are due (a requeued try's next launch).
    fn timers(&mut self) {
        if let Some(due) = self.ex.poll_timeout() {
            if due <= self.now {
                self.ex.handle_timeout(self.now);
                self.drain();
            }
        }
    }

    fn watch(&mut self, kind: EventType, pod: PodView) {
        self.input(Input::Watch {
            event: WatchEvent::new(kind, pod),
        });
    }
}

fn ok(id: podwarden::CommandId) -> Input {
    Input::ApiResult {
        id,
        outcome: ApiOutcome::Ok,
    }
}

/// The pod a manifest creates, as the API server reports it: Pending, no container yet.
fn pending(m: &PodManifest) -> PodView {
    let mut pod = PodView::new(m.pod.namespace.clone(), m.pod.name.clone());
    pod.uid = support::uid(&m.pod.name);
    pod.labels = m.labels.clone();
    pod.annotations = m.annotations.clone();
    pod.phase = Some(PodPhase::Pending);
    pod.resource_version = "1".into();
    pod
}

fn main_container(pod: &mut PodView, state: ContainerState, rv: &str) {
    pod.containers = vec![ContainerStatus {
        name: "base".into(),
        state,
        restart_count: 0,
        last_state: None,
    }];
    pod.resource_version = rv.into();
}

/// A try's events after ADDED: Running, then Succeeded (or Failed, exit 1), then DELETED.
fn runs_to_the_end(added: &PodView, fail: bool) -> [(EventType, PodView); 3] {
    let started = Some(Timestamp(1));
    let mut running = added.clone();
    running.phase = Some(PodPhase::Running);
    main_container(
        &mut running,
        ContainerState::Running {
            started_at: started,
        },
        "2",
    );
    let mut done = running.clone();
    done.phase = Some(if fail {
        PodPhase::Failed
    } else {
        PodPhase::Succeeded
    });
    let ended = ContainerState::Terminated {
        reason: Some(if fail { "Error" } else { "Completed" }.into()),
        message: None,
        exit_code: i32::from(fail),
        started_at: started,
    };
    main_container(&mut done, ended, "3");
    let mut gone = done.clone();
    gone.deletion_timestamp = Some(Timestamp(1));
    gone.resource_version = "4".into();
    [
        (EventType::Modified, running),
        (EventType::Modified, done),
        (EventType::Deleted, gone),
    ]
}

/// A pod drained before its task started: Failed, `DisruptionTarget`, the main container never
/// started; then DELETED.
fn drained_before_start(added: &PodView) -> [(EventType, PodView); 2] {
    let mut failed = added.clone();
    failed.phase = Some(PodPhase::Failed);
    failed.deletion_timestamp = Some(Timestamp(1));
    failed.conditions.push(PodCondition {
        kind: "DisruptionTarget".into(),
        status: "True".into(),
        reason: Some("EvictionByEvictionAPI".into()),
        message: None,
    });
    let never_ran = ContainerState::Terminated {
        reason: Some("ContainerStatusUnknown".into()),
        message: None,
        exit_code: 137,
        started_at: None,
    };
    main_container(&mut failed, never_ran, "2");
    let mut gone = failed.clone();
    gone.resource_version = "3".into();
    [(EventType::Modified, failed), (EventType::Deleted, gone)]
}

/// Feeds each try's ADDED event and the events after it, in order; returns the time taken.
fn feed<const N: usize>(
    host: &mut Host,
    tries: Vec<(PodView, [(EventType, PodView); N])>,
) -> Duration {
    let t = Instant::now();
    for (added, rest) in tries {
        host.watch(EventType::Added, added);
        for (kind, pod) in rest {
            host.watch(kind, pod);
        }
    }
    t.elapsed()
}

/// Which lifecycle a benchmark runs.
#[derive(Clone, Copy)]
enum Lifecycle {
    /// Half the tries succeed, half fail after starting.
    Plain,
    /// Every try's first pod is drained before its task starts; the second succeeds.
    Requeued,
}

/// Runs `count` lifecycles of fresh tries numbered from `*next`; returns the time the executor
/// took (events built outside it) and checks every try ended with one report.
fn lifecycles(host: &mut Host, next: &mut usize, count: usize, kind: Lifecycle) -> Duration {
    let mut timed = Duration::ZERO;
    let mut done = 0;
    while done < count {
        let batch = BATCH.min(count - done);
        let keys: Vec<TaskKey> = (0..batch).map(|i| key(1_000_000_000 + *next + i)).collect();
        *next += batch;
        let reports = host.reports;
        // Submit the batch; creates answered.
        let submits: Vec<Input> = keys
            .iter()
            .map(|k| Input::Submit {
                key: k.clone(),
                template: PodTemplate::default(),
            })
            .collect();
        let t = Instant::now();
        for s in submits {
            host.input(s);
        }
        timed += t.elapsed();
        let added: Vec<PodView> = host.created.drain(..).map(|m| pending(&m)).collect();
        assert_eq!(added.len(), batch, "one CreatePod per submit");
        match kind {
            Lifecycle::Plain => {
                let events: Vec<_> = added
                    .into_iter()
                    .enumerate()
                    .map(|(i, a)| {
                        let rest = runs_to_the_end(&a, (*next + i) & 1 == 0);
                        (a, rest)
                    })
                    .collect();
                timed += feed(host, events);
            }
            Lifecycle::Requeued => {
                let events: Vec<_> = added
                    .into_iter()
                    .map(|a| {
                        let rest = drained_before_start(&a);
                        (a, rest)
                    })
                    .collect();
                let requeues = host.requeues;
                host.db_state = TaskState::Queued;
                timed += feed(host, events);
                let t = Instant::now();
                host.timers();
                timed += t.elapsed();
                host.db_state = TaskState::Running;
                assert_eq!(host.requeues - requeues, batch, "one requeue per try");
                let second: Vec<_> = host
                    .created
                    .drain(..)
                    .map(|m| {
                        let a = pending(&m);
                        let rest = runs_to_the_end(&a, false);
                        (a, rest)
                    })
                    .collect();
                assert_eq!(second.len(), batch, "a second pod per requeued try");
                timed += feed(host, second);
            }
        }
        assert_eq!(host.reports - reports, batch, "one report per try");
        for k in &keys {
            assert!(!host.ex.is_tracking(k), "{k} is still tracked");
        }
        done += batch;
    }
    timed
}

/// The floor's per-pod state: what a minimal hand-written tracker keeps.
struct Tracked {
    phase: Option<PodPhase>,
    version: u64,
}

fn bench_lifecycle(c: &mut Criterion) {
    let mut group = c.benchmark_group("core_lifecycle");
    for n in support::tracked_sizes() {
        let (ex, _) = executor_with(n);
        let mut host = Host::new(ex);
        let mut next = 0;
        for kind in [Lifecycle::Plain, Lifecycle::Requeued] {
            let name = match kind {
                Lifecycle::Plain => "lifecycle",
                Lifecycle::Requeued => "requeued_lifecycle",
            };
            // Inputs per lifecycle, counted on one batch.
            let before = host.inputs;
            lifecycles(&mut host, &mut next, BATCH, kind);
            let per = (host.inputs - before) / BATCH;
            group.throughput(Throughput::Elements(per as u64));
            group.bench_function(format!("{name}/{n}"), |b| {
                b.iter_custom(|iters| lifecycles(&mut host, &mut next, iters as usize, kind));
            });
            eprintln!("{name}/{n}: {per} inputs per lifecycle");
        }

        // The floor: as many lookups and updates per lifecycle as the plain lifecycle's
        // inputs, in a map of n + BATCH pod names like the executor's.
        let per = 7;
        let names: Vec<String> = (0..n + BATCH)
            .map(|i| format!("customer-0001-daily-ingest-pipeline-extract-{i:09}"))
            .collect();
        let mut map: HashMap<String, Tracked> = names
            .iter()
            .map(|n| {
                (
                    n.clone(),
                    Tracked {
                        phase: None,
                        version: 0,
                    },
                )
            })
            .collect();
        let mut at = 0usize;
        group.throughput(Throughput::Elements(per));
        group.bench_function(format!("hashmap_floor/{n}"), |b| {
            b.iter(|| {
                at = (at + 7_919) % names.len();
                let name = names[at].as_str();
                for i in 0..per {
                    if let Some(t) = map.get_mut(name) {
                        t.phase = Some(PodPhase::Running);
                        t.version = t.version.wrapping_add(i);
                    }
                }
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench_lifecycle);

/// With `PODWARDEN_BENCH_LIFECYCLES=N`, runs N plain and N requeued lifecycles at each tracked
/// size and exits, for an instruction count that does not depend on the machine's load:
///
/// ```text
/// PODWARDEN_BENCH_TRACKED=100000 PODWARDEN_BENCH_LIFECYCLES=2000 valgrind --tool=callgrind \
///   --toggle-collect='*Executor::handle_input' --toggle-collect='*Executor::handle_timeout' \
///   --toggle-collect='*Executor::poll_command' target/release/deps/core_lifecycle-HASH
/// ```
fn count_only(lifecycles_each: usize) {
    for n in support::tracked_sizes() {
        let (ex, _) = executor_with(n);
        let mut host = Host::new(ex);
        let mut next = 0;
        for kind in [Lifecycle::Plain, Lifecycle::Requeued] {
            lifecycles(&mut host, &mut next, lifecycles_each, kind);
        }
        eprintln!("{n} tracked: {} inputs", host.inputs);
    }
}

fn main() {
    if let Ok(count) = std::env::var("PODWARDEN_BENCH_LIFECYCLES") {
        let count = count
            .parse()
            .unwrap_or_else(|_| panic!("PODWARDEN_BENCH_LIFECYCLES: {count:?} is not a count"));
        count_only(count);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
