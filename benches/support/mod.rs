//! What the core benchmarks share: realistic try keys, a configuration that never throttles, and
//! an executor with `n` tries Running in the background.
#![allow(dead_code, unreachable_pub)]

use podwarden::command::ApiCall;
use podwarden::{
    ApiOutcome, CommandKind, Config, Executor, Input, PodPhase, PodTemplate, PodView, TaskKey,
    Timestamp,
};

/// Distinct Running pods kept as watch events for the benchmarks that replay them.
pub const HOT_PODS: usize = 4_096;

/// The `i`-th try: ids of 20 to 60 characters, as real DAGs have.
pub fn key(i: usize) -> TaskKey {
    TaskKey::new(
        format!("customer_{:04}_daily_ingest_pipeline", i % 997),
        format!("extract_partition_{i:07}_to_warehouse"),
        "scheduled__2026-11-23T00:00:00+00:00",
        1,
    )
}

/// A pod's uid as Kubernetes assigns one: a UUID (canonical lowercase `8-4-4-4-12` form), here
/// derived from the pod's name so every run gets the same ones.
pub fn uid(pod_name: &str) -> String {
    // FNV-1a, twice with different offsets, for 128 bits.
    let fnv = |offset: u64| {
        pod_name.bytes().fold(offset, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    let (a, b) = (fnv(0xcbf2_9ce4_8422_2325), fnv(0x6c62_272e_07bb_0142));
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | (b >> 48) & 0x3fff,
        b & 0xffff_ffff_ffff
    )
}

/// Airflow's defaults, with creation batches and the API budget large enough that nothing waits
/// (a million creates at one instant included).
pub fn unthrottled() -> Config {
    Config {
        worker_pods_creation_batch_size: u32::MAX,
        api_qps: u32::MAX,
        api_burst: u32::MAX,
        ..Config::default()
    }
}

/// An executor tracking `n` Running tries (keys `key(0..n)`), and the Running pods of up to
/// `HOT_PODS` of them, spread evenly.
pub fn executor_with(n: usize) -> (Executor, Vec<PodView>) {
    let mut ex = Executor::new(unthrottled(), "5", Timestamp(0)).expect("valid config");
    let stride = (n / HOT_PODS).max(1);
    let mut pods = Vec::new();
    for i in 0..n {
        ex.handle_input(
            Timestamp(0),
            Input::Submit {
                key: key(i),
                template: PodTemplate::default(),
            },
        )
        .expect("submit");
        // Each create is answered before the next submit: Airflow's default creates one pod at
        // a time (`async_pod_creation = false`), so an unanswered create holds every later one.
        let mut answers = Vec::new();
        loop {
            while let Some(cmd) = ex.poll_command() {
                if let CommandKind::Api(ApiCall::CreatePod { manifest }) = &cmd.kind {
                    if i % stride == 0 && pods.len() < HOT_PODS {
                        let mut pod =
                            PodView::new(manifest.pod.namespace.clone(), manifest.pod.name.clone());
                        pod.uid = uid(&manifest.pod.name);
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
            if answers.is_empty() {
                break;
            }
            for a in answers.drain(..) {
                ex.handle_input(Timestamp(0), a)
                    .expect("answers match commands");
            }
        }
    }
    let tracked = ex.state_size();
    assert_eq!(
        tracked.tasks, n,
        "every background try is tracked: {tracked:?}"
    );
    assert_eq!(
        pods.len(),
        n.div_ceil(stride).min(HOT_PODS),
        "one hot pod per stride"
    );
    (ex, pods)
}

/// Tracked-try counts to measure: 1,000, 100,000 and 1,000,000, or the comma-separated list in
/// `PODWARDEN_BENCH_TRACKED` (to profile one size without building the others' executors).
pub fn tracked_sizes() -> Vec<usize> {
    match std::env::var("PODWARDEN_BENCH_TRACKED") {
        Ok(list) => list
            .split(',')
            .map(|n| {
                n.trim()
                    .replace('_', "")
                    .parse()
                    .unwrap_or_else(|_| panic!("PODWARDEN_BENCH_TRACKED: {n:?} is not a count"))
            })
            .collect(),
        Err(_) => vec![1_000, 100_000, 1_000_000],
    }
}
