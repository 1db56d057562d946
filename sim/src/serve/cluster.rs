//! The served cluster's own thread: it owns the world, runs it in real time, answers the HTTP
//! side's calls one at a time, streams every change to the open watches, reads what the
//! schedulers wrote to the metadata DB, and decides when the run is over.

use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use podwarden_core::command::Precondition;
use podwarden_core::db::TaskState;
use podwarden_core::{label, FieldSelector, LabelSelector, PodRef, PodView, TaskKey, WatchEvent};

use super::metadata::{unix_ms, Reader};
use super::pod_json::{bookmark, pod_json, success_status, watch_line, Epoch, NewPod, StatusError};
use super::verdict::Tally;
use crate::world::World;

/// Open watches at most; one more gets 429.
pub(crate) const MAX_WATCHES: usize = 256;
/// Watch lines buffered for one client; a client that falls this far behind is cut off (its
/// watch ends, as the API server ends a watch it cannot feed).
pub(crate) const WATCH_BUFFER: usize = 4_096;
/// Items in one list page at most (a larger list continues).
pub(crate) const MAX_PAGE: usize = 10_000;
/// How often an open watch that asked for them gets a BOOKMARK.
const BOOKMARK_EVERY: Duration = Duration::from_secs(5);
/// How often the metadata DB is read.
const DB_POLL_EVERY: Duration = Duration::from_millis(250);
/// The default `timeoutSeconds` of a watch (Kubernetes draws 30–60 min; clients send their own).
const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1_800);

/// Which pods a list or a watch is about.
#[derive(Debug, Clone, Default)]
pub(crate) struct Query {
    /// `None`: every namespace.
    pub(crate) namespace: Option<String>,
    pub(crate) label: LabelSelector,
    pub(crate) field: Option<FieldSelector>,
    pub(crate) resource_version: Option<String>,
    pub(crate) limit: Option<usize>,
    pub(crate) continue_after: Option<String>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) bookmarks: bool,
}

impl Query {
    fn selects(&self, pod: &PodView) -> bool {
        self.label.matches(&pod.labels) && self.field.is_none_or(|f| f.matches(pod.phase))
    }
}

/// An answer: a status code and a JSON body, or a `Status` error.
pub(crate) type Answer = Result<(u16, Value), StatusError>;
type Reply = oneshot::Sender<Answer>;

/// What the HTTP side asks of the cluster.
#[derive(Debug)]
pub(crate) enum Call {
    List {
        query: Query,
        reply: Reply,
    },
    Get {
        pod: PodRef,
        reply: Reply,
    },
    Create {
        namespace: String,
        pod: NewPod,
        reply: Reply,
    },
    PatchLabels {
        pod: PodRef,
        labels: BTreeMap<String, String>,
        precondition: Option<Precondition>,
        reply: Reply,
    },
    Delete {
        pod: PodRef,
        grace_period_seconds: Option<u32>,
        uid: Option<String>,
        resource_version: Option<String>,
        reply: Reply,
    },
    Evict {
        pod: PodRef,
        reply: Reply,
    },
    Watch {
        query: Query,
        lines: mpsc::Sender<Vec<u8>>,
        reply: oneshot::Sender<Result<(), StatusError>>,
    },
    /// Stop now (a signal): judge and end.
    Stop,
}

impl Call {
    /// Whether the fault plan's injected errors reach it (not a watch: its errors are 410s).
    fn injectable(&self) -> bool {
        !matches!(self, Self::Watch { .. } | Self::Stop)
    }

    /// Answers it with `error`.
    fn refuse(self, error: StatusError) {
        let reply = match self {
            Self::List { reply, .. }
            | Self::Get { reply, .. }
            | Self::Create { reply, .. }
            | Self::PatchLabels { reply, .. }
            | Self::Delete { reply, .. }
            | Self::Evict { reply, .. } => reply,
            Self::Watch { reply, .. } => {
                let _ = reply.send(Err(error));
                return;
            }
            Self::Stop => return,
        };
        let _ = reply.send(Err(error));
    }
}

struct Watcher {
    query: Query,
    lines: mpsc::Sender<Vec<u8>>,
    until: Instant,
    next_bookmark: Instant,
}

/// How the run is paced and when it ends.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pace {
    /// Simulated milliseconds per real millisecond.
    pub(crate) speed: f64,
    /// End once every task instance is finished and every pod gone.
    pub(crate) until_idle: bool,
    /// A scheduler whose heartbeat is older than this is dead (for `no_thrash`).
    pub(crate) dead_after_ms: u64,
}

/// The cluster: the world, the server's watches, the DB reader and the tally.
pub(crate) struct Cluster {
    world: World,
    reader: Reader,
    watchers: BTreeMap<u64, Watcher>,
    next_watch: u64,
    expiries_seen: u32,
    specs: BTreeMap<String, Value>,
    epoch: Epoch,
    pace: Pace,
    pub(crate) tally: Tally,
    last_transition: i64,
    /// Worker pods created per try, in order (for `requeue_bounded`).
    pods_of_try: BTreeMap<TaskKey, Vec<String>>,
}

impl Cluster {
    pub(crate) fn new(world: World, reader: Reader, pace: Pace) -> Self {
        Self {
            world,
            reader,
            watchers: BTreeMap::new(),
            next_watch: 0,
            expiries_seen: 0,
            specs: BTreeMap::new(),
            epoch: Epoch(unix_ms()),
            pace,
            tally: Tally::default(),
            last_transition: 0,
            pods_of_try: BTreeMap::new(),
        }
    }

    /// Runs until a `Stop`, the HTTP side's end, or (with `until_idle`) idleness; then judges.
    pub(crate) fn run(mut self, calls: &Receiver<Call>) -> (World, Tally) {
        let start = Instant::now();
        let mut next_poll = start;
        loop {
            match calls.recv_timeout(Duration::from_millis(5)) {
                Ok(Call::Stop) | Err(RecvTimeoutError::Disconnected) => break,
                Ok(call) => {
                    self.answer(call);
                    self.fan_out();
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            let elapsed = start.elapsed().as_secs_f64() * 1000.0 * self.pace.speed;
            // Saturating: `as` from f64 clamps, and a served run never nears u64::MAX ms.
            self.world.advance_to(elapsed as u64);
            self.fan_out();
            let now = Instant::now();
            self.tend_watches(now);
            if now >= next_poll {
                next_poll = now + DB_POLL_EVERY;
                self.poll_db();
                if self.over() {
                    break;
                }
            }
        }
        self.poll_db();
        self.tally.end_judged = self.world.served_end_checks();
        self.tally.served_for = start.elapsed();
        (self.world, self.tally)
    }

    /// Whether the run is over: with `until_idle`, every task arrived and finished and every
    /// pod gone (but those the policy keeps), or finished with other pods left for a minute of
    /// simulated time, or the scenario's end passed with tasks unfinished.
    fn over(&mut self) -> bool {
        if !self.pace.until_idle {
            return false;
        }
        let now = self.world.now;
        let all_finished = self.world.all_tasks_finished();
        let deadline = self.world.served.as_ref().map_or(u64::MAX, |s| s.deadline);
        if !all_finished {
            self.tally.finished_at = None;
            return now > deadline;
        }
        let since = *self.tally.finished_at.get_or_insert(now);
        self.world.only_kept_pods_left() || now.saturating_sub(since) > 60_000
    }

    fn answer(&mut self, call: Call) {
        // The fault plan's injected errors reach every request, as the simulated schedulers'.
        let call = match (call.injectable(), self.world.draw_injected_error()) {
            (true, Some(error)) => {
                self.tally.injected_errors += 1;
                call.refuse(status_of(error).unwrap_or_else(|| {
                    StatusError::new(500, "InternalError", "injected by the fault plan")
                }));
                return;
            }
            _ => call,
        };
        match call {
            Call::List { query, reply } => {
                let _ = reply.send(self.list(&query));
            }
            Call::Get { pod, reply } => {
                let answer = self
                    .world
                    .api
                    .pod_at(&pod)
                    .map(|p| (200, self.json(&p.view)))
                    .ok_or_else(|| not_found(&pod.name));
                let _ = reply.send(answer);
            }
            Call::Create {
                namespace,
                pod,
                reply,
            } => {
                let _ = reply.send(self.create(namespace, pod));
            }
            Call::PatchLabels {
                pod,
                labels,
                precondition,
                reply,
            } => {
                let _ = reply.send(self.patch(&pod, labels, precondition.as_ref()));
            }
            Call::Delete {
                pod,
                grace_period_seconds,
                uid,
                resource_version,
                reply,
            } => {
                let answer = match self.world.api.pod_at(&pod) {
                    None => Err(not_found(&pod.name)),
                    Some(p)
                        if uid.as_ref().is_some_and(|u| *u != p.view.uid)
                            || resource_version
                                .as_ref()
                                .is_some_and(|rv| *rv != p.view.resource_version) =>
                    {
                        Err(StatusError::new(
                            409,
                            "Conflict",
                            format!("Precondition failed for pod {}", pod.name),
                        ))
                    }
                    Some(p) => {
                        // Kubernetes answers with the pod; one removed at once (a force
                        // delete) is answered with its last state.
                        let mut last = p.view.clone();
                        let grace = grace_period_seconds.unwrap_or(30);
                        self.world.delete_pod(&pod.name, grace, None);
                        self.tally.deletes += 1;
                        let answer = match self.world.api.pod_at(&pod) {
                            Some(p) => self.json(&p.view),
                            None => {
                                last.deletion_timestamp.get_or_insert(self.world.now());
                                self.json(&last)
                            }
                        };
                        Ok((200, answer))
                    }
                };
                let _ = reply.send(answer);
            }
            Call::Evict { pod, reply } => {
                let answer = if self.world.api.pod_at(&pod).is_none() {
                    Err(not_found(&pod.name))
                } else {
                    self.world
                        .delete_pod(&pod.name, 30, Some("EvictionByEvictionAPI"));
                    Ok((201, success_status(201)))
                };
                let _ = reply.send(answer);
            }
            Call::Watch {
                query,
                lines,
                reply,
            } => {
                let _ = reply.send(self.watch(query, lines));
            }
            Call::Stop => {}
        }
    }

    fn json(&self, view: &PodView) -> Value {
        pod_json(view, self.specs.get(&view.name), self.epoch)
    }

    /// The pod's JSON now, or a success `Status` once it is gone.
    fn current(&self, pod: &PodRef) -> Value {
        self.world
            .api
            .pod_at(pod)
            .map_or_else(|| success_status(200), |p| self.json(&p.view))
    }

    fn list(&self, query: &Query) -> Answer {
        let limit = query
            .limit
            .filter(|l| *l > 0)
            .unwrap_or(MAX_PAGE)
            .min(MAX_PAGE);
        let mut items = Vec::new();
        let mut more = None;
        for p in self.world.api.pods.values() {
            if query
                .namespace
                .as_ref()
                .is_some_and(|ns| *ns != p.view.namespace)
                || !query.selects(&p.view)
                || query
                    .continue_after
                    .as_ref()
                    .is_some_and(|after| p.view.name <= *after)
            {
                continue;
            }
            if items.len() == limit {
                more = items.last().map(|_| p.view.name.clone());
                break;
            }
            items.push(p);
        }
        let continue_token = more
            .is_some()
            .then(|| items.last().map(|p| p.view.name.clone()))
            .flatten();
        let items: Vec<Value> = items.iter().map(|p| self.json(&p.view)).collect();
        let mut metadata = json!({"resourceVersion": self.world.api.rv.to_string()});
        if let Some(token) = continue_token {
            metadata["continue"] = json!(token);
        }
        Ok((
            200,
            json!({"kind": "PodList", "apiVersion": "v1", "metadata": metadata, "items": items}),
        ))
    }

    fn create(&mut self, namespace: String, pod: NewPod) -> Answer {
        let NewPod {
            name,
            labels,
            annotations,
            spec,
        } = pod;
        let key = TaskKey::from_annotations(&annotations).ok();
        let outcome =
            self.world
                .admit_worker_pod(namespace.clone(), name.clone(), labels, annotations);
        if let Some(failure) = status_of(outcome) {
            return Err(failure);
        }
        self.specs.insert(name.clone(), spec);
        self.tally.creates += 1;
        if let Some(key) = key {
            let pods = self.pods_of_try.entry(key.clone()).or_default();
            if let Some(previous) = pods.last().cloned() {
                self.world.checker.requeued(&key, &previous);
            }
            pods.push(name.clone());
        }
        self.world.collect_findings();
        Ok((201, self.current(&PodRef::new(namespace, name))))
    }

    fn patch(
        &mut self,
        pod: &PodRef,
        labels: BTreeMap<String, String>,
        precondition: Option<&Precondition>,
    ) -> Answer {
        if labels.contains_key(label::AIRFLOW_WORKER) {
            self.judge_liveness();
            let changes_owner = self.world.api.pod_at(pod).is_some_and(|p| {
                p.view.labels.get(label::AIRFLOW_WORKER) != labels.get(label::AIRFLOW_WORKER)
            });
            if changes_owner {
                self.tally.owner_changes += 1;
            }
        }
        // The patcher is not known (no authentication): "" is no scheduler's id.
        let outcome = self
            .world
            .patch_labels_request("", pod, labels, precondition);
        self.world.collect_findings();
        match status_of(outcome) {
            Some(failure) => Err(failure),
            None => Ok((200, self.current(pod))),
        }
    }

    /// Tells the checker which schedulers are alive now, from the job table: running, with a
    /// heartbeat younger than `dead_after`.
    fn judge_liveness(&mut self) {
        let Ok(jobs) = self.reader.jobs() else {
            return;
        };
        let now = i64::try_from(unix_ms()).unwrap_or(i64::MAX);
        let dead_after = i64::try_from(self.pace.dead_after_ms).unwrap_or(i64::MAX);
        for job in jobs {
            let alive =
                job.state == "running" && now.saturating_sub(job.latest_heartbeat) <= dead_after;
            self.world.set_alive(&job.id, alive);
            self.tally.schedulers.insert(job.id);
        }
    }

    fn watch(&mut self, query: Query, lines: mpsc::Sender<Vec<u8>>) -> Result<(), StatusError> {
        self.watchers.retain(|_, w| !w.lines.is_closed());
        if self.watchers.len() >= MAX_WATCHES {
            return Err(StatusError::new(
                429,
                "TooManyRequests",
                format!("too many open watches (at most {MAX_WATCHES})"),
            ));
        }
        let api = &self.world.api;
        let mut first: Vec<Vec<u8>> = Vec::new();
        match query.resource_version.as_deref() {
            // "Any version": an ADDED for every pod it selects now, then changes.
            None | Some("" | "0") => {
                for p in api.pods.values() {
                    if query
                        .namespace
                        .as_ref()
                        .is_none_or(|ns| *ns == p.view.namespace)
                        && query.selects(&p.view)
                    {
                        first.push(watch_line("ADDED", self.json(&p.view)));
                    }
                }
            }
            Some(rv) => {
                let from: u64 = rv.parse().map_err(|_| {
                    StatusError::bad_request(format!("invalid resourceVersion {rv:?}"))
                })?;
                let oldest = api.history.front().map_or(api.rv + 1, |c| c.rv);
                if from + 1 < oldest && from < api.rv {
                    // Kubernetes answers the watch, then ends it with an ERROR event.
                    let gone = StatusError::new(
                        410,
                        "Expired",
                        format!("too old resource version: {from} ({})", oldest - 1),
                    );
                    let _ = lines.try_send(watch_line("ERROR", gone.body()));
                    return Ok(());
                }
                for c in api.history.iter().filter(|c| c.rv > from) {
                    if let Some(event) =
                        c.event_matching(query.namespace.as_deref(), |p| query.selects(p))
                    {
                        first.push(self.event_line(&event));
                    }
                }
            }
        }
        for line in first {
            if lines.try_send(line).is_err() {
                return Ok(());
            }
        }
        let now = Instant::now();
        self.watchers.insert(
            self.next_watch,
            Watcher {
                until: now + query.timeout.unwrap_or(DEFAULT_WATCH_TIMEOUT),
                next_bookmark: now + BOOKMARK_EVERY,
                query,
                lines,
            },
        );
        self.next_watch += 1;
        Ok(())
    }

    fn event_line(&self, event: &WatchEvent) -> Vec<u8> {
        match event.pod() {
            Some((kind, pod)) => watch_line(kind.as_str(), self.json(pod)),
            None => bookmark(self.world.api.rv),
        }
    }

    /// Sends the store's changes to every watch they concern; a watch whose client is gone or
    /// too far behind is closed.
    fn fan_out(&mut self) {
        let changes = self.world.take_changes();
        let expiries = self.world.served.as_ref().map_or(0, |s| s.watch_expiries);
        if changes.is_empty() && expiries == self.expiries_seen {
            return;
        }
        let mut closed = Vec::new();
        for change in &changes {
            for (id, w) in &self.watchers {
                let Some(event) =
                    change.event_matching(w.query.namespace.as_deref(), |p| w.query.selects(p))
                else {
                    continue;
                };
                if w.lines.try_send(self.event_line(&event)).is_err() {
                    closed.push(*id);
                }
            }
        }
        if expiries != self.expiries_seen {
            // The fault plan expired the watches: each ends with 410, as a compacted watch
            // cache ends them.
            self.expiries_seen = expiries;
            self.tally.watches_expired += self.watchers.len() as u64;
            let gone = StatusError::new(410, "Expired", "the watch expired (fault plan)");
            for w in self.watchers.values() {
                let _ = w.lines.try_send(watch_line("ERROR", gone.body()));
            }
            self.watchers.clear();
        }
        for id in closed {
            self.watchers.remove(&id);
        }
    }

    /// Bookmarks, and the end of watches whose time is up.
    fn tend_watches(&mut self, now: Instant) {
        let rv = self.world.api.rv;
        self.watchers.retain(|_, w| {
            if now >= w.until || w.lines.is_closed() {
                return false;
            }
            if w.query.bookmarks && now >= w.next_bookmark {
                w.next_bookmark = now + BOOKMARK_EVERY;
                return w.lines.try_send(bookmark(rv)).is_ok();
            }
            true
        });
    }

    /// Reads the DB: the task instances' states into the world (the kubelet and the end checks
    /// read them there), and each try charged to the user into `no_retry_for_prestart_failure`.
    fn poll_db(&mut self) {
        match self.reader.transitions(self.last_transition) {
            Ok(transitions) => {
                for t in transitions {
                    self.last_transition = t.id;
                    let charged =
                        matches!(t.new_state, Some(TaskState::UpForRetry | TaskState::Failed))
                            && t.new_try == t.key.try_number;
                    if charged {
                        self.tally.retries_charged += 1;
                        let never_started = !self.world.try_started(&t.key);
                        let now = self.world.now;
                        self.world
                            .checker
                            .retry_consumed(&t.key, never_started, now);
                    }
                }
            }
            Err(e) => self.tally.db_errors.push(e.to_string()),
        }
        match self.reader.task_instances() {
            Ok(rows) => {
                for row in rows {
                    if let Some(state) = row.state {
                        self.world.mirror_task(&row.key, state);
                    }
                }
            }
            Err(e) => self.tally.db_errors.push(e.to_string()),
        }
        self.judge_liveness();
        self.world.collect_findings();
    }
}

fn not_found(name: &str) -> StatusError {
    StatusError::new(404, "NotFound", format!("pods \"{name}\" not found"))
}

/// The world's failed outcome as a `Status` error.
fn status_of(outcome: podwarden_core::ApiOutcome) -> Option<StatusError> {
    match outcome {
        podwarden_core::ApiOutcome::Failed {
            failure:
                podwarden_core::ApiFailure::Status {
                    code,
                    reason,
                    message,
                    ..
                },
        } => Some(StatusError::new(code, reason, message)),
        podwarden_core::ApiOutcome::Failed { failure } => Some(StatusError::new(
            500,
            "InternalError",
            format!("{failure:?}"),
        )),
        _ => None,
    }
}
