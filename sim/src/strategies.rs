//! proptest strategies for testing executor policies and deployments (feature `proptest`, on by
//! default): pods, realistic watch streams, heartbeat snapshots, fault plans and whole scenarios.
//!
//! Every strategy shrinks towards a small, readable case: one pod that stays Pending, a stream
//! of one event, one live scheduler, no fault, a one-scheduler scenario with a handful of tasks.
//!
//! ```
//! use proptest::prelude::*;
//! use podwarden_sim::strategies::arb_watch_stream;
//!
//! proptest!(|(stream in arb_watch_stream())| {
//!     // Every pod event of a generated stream names a task try.
//!     for event in &stream {
//!         if let Some((_, pod)) = event.pod() {
//!             prop_assert!(pod.task_key().is_ok());
//!         }
//!     }
//! });
//! ```

use proptest::collection::vec;
use proptest::prelude::*;

use podwarden_core::label;
use podwarden_core::liveness::{HeartbeatRecord, JobState};
use podwarden_core::{
    ContainerState, ContainerStatus, EventType, PodCondition, PodPhase, PodView, TaskKey,
    Timestamp, WatchEvent,
};

use crate::scenario::{Fault, Scenario};

/// Scheduler ids used by the generated pods and heartbeats.
pub const SCHEDULER_IDS: [&str; 3] = ["1", "2", "3"];

/// A task try with short ids (`dag_0`, `task_0`), shrinking to try 1 of the first task.
pub fn arb_task_key() -> impl Strategy<Value = TaskKey> {
    (0..4u32, 0..8u32, 1..3u32).prop_map(|(d, t, try_number)| {
        TaskKey::new(format!("dag_{d}"), format!("task_{t}"), "run", try_number)
    })
}

/// What a pod's main container shows.
fn arb_main_state() -> impl Strategy<Value = Option<ContainerState>> {
    prop_oneof![
        Just(None),
        prop_oneof![
            Just("ContainerCreating"),
            Just("ErrImagePull"),
            Just("ImagePullBackOff"),
            Just("CreateContainerConfigError"),
        ]
        .prop_map(|r| Some(ContainerState::Waiting {
            reason: Some(r.into()),
            message: None
        })),
        Just(Some(ContainerState::Running {
            started_at: Some(Timestamp(1_000))
        })),
        (
            prop_oneof![
                Just("Completed"),
                Just("Error"),
                Just("OOMKilled"),
                Just("ContainerStatusUnknown")
            ],
            prop_oneof![Just(0), Just(1), Just(137), Just(143)],
            any::<bool>()
        )
            .prop_map(
                |(reason, exit_code, started)| Some(ContainerState::Terminated {
                    reason: Some(reason.into()),
                    message: None,
                    exit_code,
                    started_at: started.then_some(Timestamp(1_000)),
                })
            ),
    ]
}

/// A worker pod of some try, owned by one of [`SCHEDULER_IDS`], in any phase, possibly being
/// deleted or marked for disruption. Shrinks towards a Pending pod with no container status.
pub fn arb_pod_view() -> impl Strategy<Value = PodView> {
    (
        arb_task_key(),
        0..3usize,
        prop_oneof![
            Just(Some(PodPhase::Pending)),
            Just(Some(PodPhase::Running)),
            Just(Some(PodPhase::Succeeded)),
            Just(Some(PodPhase::Failed)),
            Just(None),
        ],
        arb_main_state(),
        any::<bool>(),
        proptest::option::of(prop_oneof![
            Just("EvictionByEvictionAPI"),
            Just("PreemptionByScheduler"),
            Just("DeletionByTaintManager"),
        ]),
        0..1000u32,
    )
        .prop_map(|(key, owner, phase, main, deleting, disruption, n)| {
            let mut pod = PodView::new(
                "default",
                format!("{}-{}-{n}", key.dag_id, key.task_id).replace('_', "-"),
            );
            pod.uid = format!("uid-{}", pod.name);
            pod.resource_version = n.to_string();
            pod.labels = key.to_labels();
            pod.labels
                .insert(label::AIRFLOW_WORKER.into(), SCHEDULER_IDS[owner].into());
            pod.labels
                .insert(label::KUBERNETES_EXECUTOR.into(), label::TRUE.into());
            pod.annotations = key.to_annotations();
            pod.phase = phase;
            pod.containers = main
                .map(|s| vec![ContainerStatus::new("base", s)])
                .unwrap_or_default();
            pod.deletion_timestamp = deleting.then_some(Timestamp(2_000));
            pod.conditions.extend(disruption.map(disruption_target));
            pod
        })
}

/// The condition Kubernetes sets on a pod it is about to disrupt.
fn disruption_target(reason: &str) -> PodCondition {
    PodCondition {
        kind: "DisruptionTarget".into(),
        status: "True".into(),
        reason: Some(reason.into()),
        message: None,
    }
}

/// How one pod's life goes, as Kubernetes reports it.
#[derive(Debug, Clone, Copy)]
enum Life {
    /// Pending, Running, Succeeded.
    Succeeds,
    /// Pending, Running, Failed with the task's own error.
    Fails,
    /// SIGTERM before the task started: MODIFIED (deleting), MODIFIED Failed, DELETED Failed.
    SigtermPending,
    /// Eviction: DisruptionTarget, then Failed, then DELETED.
    Evicted,
    /// The image never pulls: Pending with ErrImagePull.
    ImagePull,
}

fn life_events(key: &TaskKey, index: usize, life: Life) -> Vec<(EventType, PodView)> {
    let mut pod = PodView::new("default", format!("pod-{index}"));
    pod.uid = format!("uid-pod-{index}");
    pod.labels = key.to_labels();
    pod.labels
        .insert(label::AIRFLOW_WORKER.into(), SCHEDULER_IDS[0].into());
    pod.labels
        .insert(label::KUBERNETES_EXECUTOR.into(), label::TRUE.into());
    pod.annotations = key.to_annotations();
    let at = |mut p: PodView, phase: PodPhase, main: Option<ContainerState>| {
        p.phase = Some(phase);
        p.containers = main
            .map(|s| vec![ContainerStatus::new("base", s)])
            .unwrap_or_default();
        p
    };
    let running = Some(ContainerState::Running {
        started_at: Some(Timestamp(1_000)),
    });
    let ended = |code: i32, reason: &str, started: bool| {
        Some(ContainerState::Terminated {
            reason: Some(reason.into()),
            message: None,
            exit_code: code,
            started_at: started.then_some(Timestamp(1_000)),
        })
    };
    let pending = at(pod, PodPhase::Pending, None);
    let mut out = vec![(EventType::Added, pending.clone())];
    match life {
        Life::Succeeds | Life::Fails => {
            out.push((
                EventType::Modified,
                at(pending.clone(), PodPhase::Running, running),
            ));
            let (phase, end) = match life {
                Life::Succeeds => (PodPhase::Succeeded, ended(0, "Completed", true)),
                _ => (PodPhase::Failed, ended(1, "Error", true)),
            };
            out.push((EventType::Modified, at(pending, phase, end)));
        }
        Life::SigtermPending => {
            let mut deleting = pending.clone();
            deleting.deletion_timestamp = Some(Timestamp(2_000));
            out.push((EventType::Modified, deleting.clone()));
            let failed = at(
                deleting,
                PodPhase::Failed,
                ended(137, "ContainerStatusUnknown", false),
            );
            out.push((EventType::Modified, failed.clone()));
            out.push((EventType::Deleted, failed));
        }
        Life::Evicted => {
            let mut disrupted = at(pending, PodPhase::Running, running);
            disrupted
                .conditions
                .push(disruption_target("EvictionByEvictionAPI"));
            out.push((EventType::Modified, disrupted.clone()));
            let mut failed = at(disrupted, PodPhase::Failed, ended(143, "Error", true));
            failed.deletion_timestamp = Some(Timestamp(3_000));
            out.push((EventType::Modified, failed.clone()));
            out.push((EventType::Deleted, failed));
        }
        Life::ImagePull => {
            let waiting = Some(ContainerState::Waiting {
                reason: Some("ErrImagePull".into()),
                message: None,
            });
            out.push((EventType::Modified, at(pending, PodPhase::Pending, waiting)));
        }
    }
    out
}

/// A watch stream as real clusters send it: each of a few pods lives one of the usual lives
/// (succeeds, fails, SIGTERM before starting, eviction, image that never pulls), the pods'
/// events interleaved, with duplicated events (replays), swaps of neighbouring events of
/// different pods, and relists (every live pod re-sent as ADDED). Resource versions increase.
/// Shrinks towards one pod's events in order.
pub fn arb_watch_stream() -> impl Strategy<Value = Vec<WatchEvent>> {
    let life = prop_oneof![
        Just(Life::Succeeds),
        Just(Life::Fails),
        Just(Life::SigtermPending),
        Just(Life::Evicted),
        Just(Life::ImagePull),
    ];
    (
        vec((arb_task_key(), life), 1..5),
        vec(any::<u16>(), 0..12),
        vec((any::<u16>(), 0..3u8), 0..6),
    )
        .prop_map(|(lives, interleave, noise)| {
            let mut queues: Vec<std::collections::VecDeque<(EventType, PodView)>> = lives
                .iter()
                .enumerate()
                .map(|(i, (key, life))| life_events(key, i, *life).into())
                .collect();
            // Interleave: the choices pick which pod speaks next; then the rest in order.
            let mut events = Vec::new();
            for c in interleave {
                let live: Vec<usize> = (0..queues.len())
                    .filter(|&i| !queues[i].is_empty())
                    .collect();
                if live.is_empty() {
                    break;
                }
                let i = live[usize::from(c) % live.len()];
                events.extend(queues[i].pop_front());
            }
            for q in &mut queues {
                events.extend(q.drain(..));
            }
            // Noise: 0 duplicates an event, 1 swaps it with the next if another pod's, 2 relists.
            for (at, kind) in noise {
                if events.is_empty() {
                    break;
                }
                let i = usize::from(at) % events.len();
                match kind {
                    0 => events.insert(i + 1, events[i].clone()),
                    1 if i + 1 < events.len() && events[i].1.name != events[i + 1].1.name => {
                        events.swap(i, i + 1);
                    }
                    _ => {
                        let mut last: std::collections::BTreeMap<String, Option<PodView>> =
                            std::collections::BTreeMap::new();
                        for (k, p) in &events[..=i] {
                            last.insert(
                                p.name.clone(),
                                (*k != EventType::Deleted).then(|| p.clone()),
                            );
                        }
                        let relist: Vec<(EventType, PodView)> = last
                            .into_values()
                            .flatten()
                            .map(|p| (EventType::Added, p))
                            .collect();
                        events.splice(i + 1..i + 1, relist);
                    }
                }
            }
            events
                .into_iter()
                .enumerate()
                .map(|(n, (kind, mut pod))| {
                    pod.resource_version = (100 + n).to_string();
                    WatchEvent::new(kind, pod)
                })
                .collect()
        })
}

/// A heartbeat snapshot of [`SCHEDULER_IDS`]: each running or not, with a written heartbeat
/// in the last two minutes (as seconds). Shrinks towards all running with the same value.
pub fn arb_heartbeats() -> impl Strategy<Value = Vec<HeartbeatRecord>> {
    vec(
        (any::<bool>().prop_map(|b| !b), 0..120u64),
        SCHEDULER_IDS.len(),
    )
    .prop_map(|rows| {
        SCHEDULER_IDS
            .iter()
            .zip(rows)
            .map(|(id, (running, s))| HeartbeatRecord {
                scheduler_id: (*id).to_string(),
                state: if running {
                    JobState::Running
                } else {
                    JobState::Failed
                },
                latest_heartbeat: Timestamp(s * 1000),
            })
            .collect()
    })
}

/// Up to three faults (0 to 3) within `horizon_s` seconds, on `schedulers` schedulers and `nodes` nodes
/// (both at least 1). Shrinks towards no fault.
pub fn arb_fault_plan(
    schedulers: u32,
    nodes: u32,
    horizon_s: f64,
) -> impl Strategy<Value = Vec<Fault>> {
    let (s, n) = (schedulers.max(1), nodes.max(1));
    let at = (0..=100u32).prop_map(move |p| (f64::from(p) / 100.0 * horizon_s).round());
    let fault = prop_oneof![
        (at.clone(), 0..n).prop_map(|(at_s, node)| Fault::DrainNode { at_s, node }),
        (at.clone(), 1..30u32).prop_map(|(at_s, pods)| Fault::SigtermStorm { at_s, pods }),
        (at.clone(), 1..10u32).prop_map(|(at_s, pods)| Fault::Preempt { at_s, pods }),
        (at.clone(), 0..s, 5..120u32).prop_map(|(at_s, scheduler, r)| Fault::CrashScheduler {
            at_s,
            scheduler,
            restart_after_s: f64::from(r),
        }),
        (at.clone(), 0..s).prop_map(|(at_s, scheduler)| Fault::StallScheduler {
            at_s,
            scheduler,
            duration_s: None
        }),
        (at.clone(), 0..s, 5..60u32).prop_map(|(at_s, scheduler, d)| Fault::Partition {
            at_s,
            scheduler,
            duration_s: f64::from(d),
        }),
        (at, 0..s).prop_map(|(at_s, scheduler)| Fault::WatchExpiry { at_s, scheduler }),
    ];
    vec(fault, 0..4)
}

/// The swarm's space as a strategy: 1–5 schedulers, 1–6 nodes, 5–300 tasks over 2–15 minutes,
/// failure and churn rates, a fault plan. Every value validates. Shrinks towards one scheduler,
/// one node, five tasks over two minutes, no fault.
pub fn arb_scenario() -> impl Strategy<Value = Scenario> {
    (
        1..=5u32,
        1..=6u32,
        5..=300u32,
        2..=15u32,
        0..=5u32,
        0..=10u32,
        0..=3u32,
    )
        .prop_flat_map(
            |(schedulers, nodes, tasks, minutes, fail_pct, pull_pct, retries)| {
                let duration = f64::from(minutes) * 60.0;
                arb_fault_plan(schedulers, nodes, duration).prop_map(move |faults| {
                    let mut s = Scenario {
                        name: "generated".into(),
                        schedulers,
                        duration_s: duration,
                        heal_s: duration,
                        faults,
                        ..Scenario::default()
                    };
                    s.cluster.nodes = nodes;
                    s.cluster.node_capacity = 200;
                    s.load.tasks = tasks;
                    s.load.runtime_min_s = 10.0;
                    s.load.runtime_max_s = 60.0;
                    s.load.failure_rate = f64::from(fail_pct) / 100.0;
                    s.load.retries = retries;
                    s.cluster.image_pull_transient_failure_rate = f64::from(pull_pct) / 100.0;
                    s.parallelism = 512;
                    s
                })
            },
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::test_runner::{Config, RngAlgorithm, TestError, TestRng, TestRunner};

    fn runner() -> TestRunner {
        TestRunner::new_with_rng(
            Config {
                failure_persistence: None,
                ..Config::default()
            },
            TestRng::deterministic_rng(RngAlgorithm::ChaCha),
        )
    }

    #[test]
    fn generated_scenarios_validate_and_streams_name_their_tries() {
        runner()
            .run(&arb_scenario(), |s| {
                prop_assert!(s.validate().is_ok(), "{:?}", s.validate());
                Ok(())
            })
            .expect("valid scenarios");
        runner()
            .run(&arb_watch_stream(), |stream| {
                prop_assert!(!stream.is_empty());
                for e in &stream {
                    let (_, pod) = e.pod().expect("pod events only");
                    prop_assert!(pod.task_key().is_ok());
                }
                Ok(())
            })
            .expect("readable streams");
    }

    #[test]
    fn scenarios_shrink_to_the_smallest_world_that_has_the_property() {
        // "Has at least two schedulers and a fault": shrinks to exactly that, and small.
        let result = runner().run(&arb_scenario(), |s| {
            prop_assert!(s.schedulers < 2 || s.faults.is_empty());
            Ok(())
        });
        let Err(TestError::Fail(_, s)) = result else {
            panic!("the property is false somewhere: {result:?}")
        };
        assert_eq!((s.schedulers, s.faults.len(), s.cluster.nodes), (2, 1, 1));
        assert_eq!((s.load.tasks, s.duration_s), (5, 120.0));
    }

    #[test]
    fn streams_shrink_to_the_sigterm_sequence_alone() {
        // "No pod is deleted while being Failed": false for a SIGTERM'd or evicted pod; the
        // shrunk stream is that one pod's life.
        let result = runner().run(&arb_watch_stream(), |stream| {
            for e in &stream {
                if let Some((EventType::Deleted, pod)) = e.pod() {
                    prop_assert!(pod.phase != Some(PodPhase::Failed));
                }
            }
            Ok(())
        });
        let Err(TestError::Fail(_, stream)) = result else {
            panic!("a deleted Failed pod is generated: {result:?}")
        };
        let names: std::collections::BTreeSet<&str> = stream
            .iter()
            .filter_map(|e| e.pod().map(|(_, p)| p.name.as_str()))
            .collect();
        assert_eq!(names.len(), 1, "one pod: {stream:#?}");
        assert!(stream.len() <= 4, "its own events only: {stream:#?}");
    }
}
