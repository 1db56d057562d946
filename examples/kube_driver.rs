//! A real host for the executor on kube-rs, the shape to copy: it carries each command to the
//! API server (or the scheduler), feeds answers and watch events back, and calls `handle_timeout`
//! when `poll_timeout` says. The executor decides everything. Build with `cargo build --features
//! k8s-openapi --example kube_driver`; run with a KUBECONFIG and a scheduler id as argument.

use podwarden::command::DbQuery;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use futures::{stream::BoxStream, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchParams};
use kube::{core::WatchEvent as KubeEvent, Client};
use podwarden::k8s::{self, KubeRequest};
use podwarden::{
    ApiFailure, ApiOutcome, Command, CommandKind, Config, EventType, Executor, Input, PodTemplate,
    TaskKey, Timestamp, WatchEvent,
};

type Watch = BoxStream<'static, kube::Result<KubeEvent<Pod>>>;

/// Monotonic time since the process started, in the core's unit: the only clock read (the core
/// never reads one). Monotonic, so an NTP step of the wall clock does not reach the core.
fn now() -> Timestamp {
    static START: OnceLock<Instant> = OnceLock::new();
    let ms = START.get_or_init(Instant::now).elapsed().as_millis();
    Timestamp(u64::try_from(ms).unwrap_or(u64::MAX))
}

/// A kube error as the core's API failure: the server's status when it answered, else a
/// connection failure (a timeout is one, for kube-rs).
fn failure(e: kube::Error) -> ApiOutcome {
    let failure = match e {
        kube::Error::Api(s) => {
            let (code, reason, message) = (s.code, s.reason, s.message);
            ApiFailure::Status {
                code,
                reason,
                message,
                retry_after_secs: None,
            }
        }
        other => ApiFailure::Connection {
            message: other.to_string(),
        },
    };
    ApiOutcome::Failed { failure }
}

fn outcome<T>(result: kube::Result<T>) -> ApiOutcome {
    result.map_or_else(failure, |_| ApiOutcome::Ok)
}

/// Sends one API request; a watch request starts `watch` instead of being answered.
async fn send(
    pods: &Api<Pod>,
    request: KubeRequest,
    watch: &mut Option<Watch>,
) -> Option<ApiOutcome> {
    Some(match request {
        KubeRequest::Create { pod, .. } => outcome(pods.create(&PostParams::default(), &pod).await),
        KubeRequest::MergePatch { name, body, .. } => outcome(
            pods.patch(&name, &PatchParams::default(), &Patch::Merge(&body))
                .await,
        ),
        KubeRequest::Delete { name, options, .. } => {
            let params = DeleteParams {
                grace_period_seconds: options
                    .grace_period_seconds
                    .and_then(|g| u32::try_from(g).ok()),
                ..DeleteParams::default()
            };
            outcome(pods.delete(&name, &params).await)
        }
        KubeRequest::List {
            label_selector,
            field_selector,
            ..
        } => {
            let mut params = ListParams::default().labels(&label_selector);
            if let Some(fields) = &field_selector {
                params = params.fields(fields);
            }
            match pods.list(&params).await {
                Ok(list) => ApiOutcome::Listed {
                    // A pod the core cannot read is left out; the watch reports it if it matters.
                    pods: list
                        .items
                        .iter()
                        .filter_map(|p| k8s::pod_view(p).ok())
                        .collect(),
                    resource_version: list.metadata.resource_version.unwrap_or_default(),
                },
                Err(e) => failure(e),
            }
        }
        KubeRequest::Watch {
            label_selector,
            resource_version,
            ..
        } => {
            let params = WatchParams::default().labels(&label_selector).timeout(290);
            match pods.watch(&params, &resource_version).await {
                Ok(stream) => *watch = Some(stream.boxed()),
                // The core relists when told its watch is gone.
                Err(_) => *watch = None,
            }
            return None;
        }
    })
}

/// A watch event as the core's input; `None` for a pod the core cannot read.
fn input_of(event: KubeEvent<Pod>) -> Option<Input> {
    let (kind, pod) = match event {
        KubeEvent::Added(p) => (EventType::Added, p),
        KubeEvent::Modified(p) => (EventType::Modified, p),
        KubeEvent::Deleted(p) => (EventType::Deleted, p),
        KubeEvent::Bookmark(b) => {
            let resource_version = b.metadata.resource_version;
            let event = WatchEvent::Bookmark {
                resource_version,
                namespace: None,
            };
            return Some(Input::Watch { event });
        }
        // 410 Gone (and any other watch error): relist and watch again.
        KubeEvent::Error(_) => return Some(Input::WatchExpired { namespace: None }),
    };
    let event = WatchEvent::new(kind, k8s::pod_view(&pod).ok()?);
    Some(Input::Watch { event })
}

/// Carries out every command the executor has, feeding the answers back, until it has none.
async fn drain(ex: &mut Executor, pods: &Api<Pod>, watch: &mut Option<Watch>) {
    while let Some(Command { id, kind }) = ex.poll_command() {
        let input = match k8s::request(&kind) {
            Some(request) => send(pods, request, watch)
                .await
                .map(|outcome| Input::ApiResult { id, outcome }),
            None => host_command(id, &kind),
        };
        if let Some(input) = input {
            if let Err(e) = ex.handle_input(now(), input) {
                eprintln!("input refused: {e}");
            }
        }
    }
}

/// The commands for the scheduler itself. A real scheduler puts reports in its event buffer and
/// answers DB questions from its metadata DB; this one prints them and has no DB (the executor
/// then fails such a try normally: it never requeues without the DB's word).
fn host_command(id: podwarden::CommandId, kind: &CommandKind) -> Option<Input> {
    if let CommandKind::Db(DbQuery::QueryTaskStates { .. })
    | CommandKind::Db(DbQuery::QueryUnfinishedTasks) = kind
    {
        let reason = "no metadata DB in this example".into();
        let outcome = podwarden::db::DbOutcome::Unavailable { reason };
        return Some(Input::DbResult { id, outcome });
    }
    println!("to the scheduler: {kind:?}");
    None
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let scheduler_id = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "example-1".into());
    let config = Config::default(); // namespace "default"; set yours, and every other option
    let pods: Api<Pod> = Api::namespaced(Client::try_default().await?, &config.namespace);
    let mut ex = Executor::new(config, scheduler_id, now())?;
    let key = TaskKey::new("example_dag", "hello", "manual__2026-11-23", 1);
    let template: PodTemplate =
        serde_json::from_str(r#"{"image": "busybox:1.36", "args": ["true"]}"#)?;
    ex.handle_input(now(), Input::Submit { key, template })?;
    let mut watch: Option<Watch> = None;
    loop {
        drain(&mut ex, &pods, &mut watch).await;
        // Sleep until the executor's next deadline, or a second at most, unless the watch speaks.
        let wake = ex
            .poll_timeout()
            .map_or(1_000, |t| t.0.saturating_sub(now().0).min(1_000));
        let event = async {
            match watch.as_mut() {
                Some(w) => w.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            next = event => match next {
                Some(Ok(e)) => if let Some(input) = input_of(e) {
                    if let Err(err) = ex.handle_input(now(), input) { eprintln!("event refused: {err}"); }
                },
                // The stream ended (server timeout) or failed: the core relists and rewatches.
                Some(Err(_)) | None => { watch = None; let _ = ex.handle_input(now(), Input::WatchExpired { namespace: None }); }
            },
            () = tokio::time::sleep(Duration::from_millis(wake)) => ex.handle_timeout(now()),
        }
        if ex.state_size().tasks == 0 {
            println!("every try has ended");
            return Ok(());
        }
    }
}
