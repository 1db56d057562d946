//! A scheduler built on the executor, one of an HA set: it drives the executor against a
//! Kubernetes API server (kube-rs) and keeps the SQLite metadata DB it shares with its peers and
//! the task processes, as `docs/serve.md` says. `--config` is the executor's settings (TOML, as a
//! scenario's `[config]`); `--preset` names a policy as `podwarden-sim run --policy` does.
//! SIGTERM marks the job `success`; a job a peer marked failed exits 1.
//! ```sh
//! cargo run --release -p podwarden-sim -- serve SCENARIO --db FILE --listen 127.0.0.1:PORT
//! cargo run --features k8s-openapi --example kube_scheduler -- \
//!     --server http://127.0.0.1:PORT --db FILE --id 1
//! ```

use std::hash::{BuildHasher, RandomState};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use std::{collections::HashMap, future::Future, sync::OnceLock};

use futures::{future::OptionFuture, AsyncBufReadExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchParams};
use kube::{core::Request, Client};
use podwarden::k8s::{self, KubeRequest};
use podwarden::k8s_json::{parse_watch_line, WatchLine};
use podwarden::Notice::{OrphansResolved, Report, Requeue, WatchPods};
use podwarden::{ApiFailure, ApiOutcome, Command, CommandId, CommandKind, Config, DbOutcome};
use podwarden::{DbQuery, Executor, Health, HeartbeatRecord, HeartbeatsUnavailable, Input};
use podwarden::{JobState, OrphanTask, PodTemplate, ReportedState, TaskKey, Timestamp, WatchEvent};
use rusqlite::TransactionBehavior::Immediate;
use rusqlite::{named_params, types::Type, Connection, OptionalExtension, Params, Row};
use tokio::{io::AsyncReadExt, io::AsyncWriteExt, net::TcpListener, net::TcpStream, sync::mpsc};
use KubeRequest::{Create, Delete, List, MergePatch, Watch};

const USAGE: &str = "options: --server URL --db FILE --id ID [--health ADDR] [--preset NAME] \
    [--config FILE.toml] [--parallelism 32]";
// The SQL of `docs/serve.md`. `TRY` takes a try as `?1` to `?5`, in the order of `KEY`.
const KEY: &str = "dag_id, task_id, run_id, map_index, try_number";
const TRY: &str = "WHERE dag_id = ?1 AND task_id = ?2 AND run_id = ?3 AND map_index = ?4 \
    AND try_number = ?5";
const UNFINISHED: &str = "SELECT dag_id, task_id, run_id, map_index, try_number FROM \
    task_instance WHERE state IN ('scheduled', 'queued', 'running', 'up_for_retry')";
const CLAIM: &str = "UPDATE task_instance SET try_number = try_number + (state = 'up_for_retry'), \
    state = 'queued', queued_by_job_id = :me, updated_at = :now WHERE rowid IN (SELECT rowid \
    FROM task_instance WHERE state IN ('scheduled', 'up_for_retry') ORDER BY updated_at, rowid \
    LIMIT :open) RETURNING dag_id, task_id, run_id, map_index, try_number, namespace";
/// Queued or running rows whose scheduler job is not running.
const ORPHANED: &str = "FROM task_instance WHERE state IN ('queued', 'running') AND \
    NOT EXISTS (SELECT 1 FROM job WHERE job.id = queued_by_job_id AND job.state = 'running')";
// What a reported try, or a reset orphan, becomes if it is still queued or running.
const SUCCEEDED: &str = "state = 'success'";
const FAILED: &str = "state = IIF(try_number <= max_tries, 'up_for_retry', 'failed')";
const RESET: &str = "state = 'scheduled', try_number = try_number + 1, queued_by_job_id = NULL";

/// The core's clock: monotonic, as the crate documentation advises, counted from the Unix time
/// at start so that Airflow's liveness rule (`written_timestamp`) can compare it with heartbeats.
fn now() -> Timestamp {
    static START: OnceLock<(Instant, u64)> = OnceLock::new();
    let (start, unix) = START.get_or_init(|| (Instant::now(), unix_ms()));
    Timestamp(unix + start.elapsed().as_millis() as u64)
}

/// Unix milliseconds: the DB's heartbeats and `updated_at`.
fn unix_ms() -> u64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH);
    since_epoch.map_or(0, |d| d.as_millis() as u64)
}

/// The outcome of the API call `f`, `ok` reading its answer; no answer within 30 s is a `Timeout`.
async fn call<T>(f: impl Future<Output = kube::Result<T>>, ok: fn(T) -> ApiOutcome) -> ApiOutcome {
    let message = match tokio::time::timeout(Duration::from_secs(30), f).await {
        Ok(Ok(answer)) => return ok(answer),
        Ok(Err(kube::Error::Api(s))) => return ApiOutcome::status(s.code, &s.reason, &s.message),
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => None,
    };
    let connection = |message| ApiFailure::Connection { message };
    let failure = message.map_or(ApiFailure::Timeout, connection);
    ApiOutcome::Failed { failure }
}

fn done<T>(_: T) -> ApiOutcome {
    ApiOutcome::Ok
}

type Inbox = mpsc::UnboundedSender<Input>;

/// Sends one request to the API server; the loop gets the call's outcome or the watch's inputs.
async fn run(client: Client, id: CommandId, request: KubeRequest, inbox: Inbox) {
    let namespace = match &request {
        List { namespace, .. } | Watch { namespace, .. } => namespace.clone(),
        Create { namespace, .. } | MergePatch { namespace, .. } | Delete { namespace, .. } => {
            Some(namespace.clone())
        }
    };
    let api: Api<Pod> = match &namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    };
    let outcome = match request {
        Create { pod, .. } => call(api.create(&PostParams::default(), &pod), done).await,
        MergePatch { name, body, .. } => {
            let patch = Patch::Merge(&body);
            call(api.patch(&name, &PatchParams::default(), &patch), done).await
        }
        Delete { name, options, .. } => {
            let grace_period_seconds = options.grace_period_seconds.and_then(|s| s.try_into().ok());
            let params = DeleteParams {
                grace_period_seconds,
                ..DeleteParams::default()
            };
            call(api.delete(&name, &params), done).await
        }
        List {
            label_selector,
            field_selector,
            ..
        } => {
            let mut params = ListParams::default().labels(&label_selector);
            params.field_selector = field_selector;
            call(api.list(&params), |list| ApiOutcome::Listed {
                // A pod the core cannot read is left out; the watch reports it if it matters.
                pods: list.iter().filter_map(|p| k8s::pod_view(p).ok()).collect(),
                resource_version: list.metadata.resource_version.unwrap_or_default(),
            })
            .await
        }
        Watch {
            label_selector,
            resource_version,
            ..
        } => {
            let params = WatchParams::default().labels(&label_selector);
            let request = Request::new(api.resource_url()).watch(&params, &resource_version);
            let stream = async { Some(client.request_stream(request.ok()?).await.ok()?.lines()) };
            let send = |input| drop(inbox.send(input));
            if let Some(mut lines) = stream.await {
                while let Some(Ok(line)) = lines.next().await {
                    // 410 Gone, another error, or a line the core cannot read: relist.
                    let Ok(WatchLine::Event(mut event)) = parse_watch_line(&line) else {
                        break;
                    };
                    if let WatchEvent::Bookmark { namespace: of, .. } = &mut event {
                        of.clone_from(&namespace);
                    }
                    send(Input::Watch { event });
                }
            }
            // Ended: the executor relists and watches again (after a pause: no busy loop).
            tokio::time::sleep(Duration::from_secs(1)).await;
            return send(Input::WatchExpired { namespace });
        }
    };
    let _ = inbox.send(Input::ApiResult { id, outcome });
}

type Sql<T> = rusqlite::Result<T>;
fn rows<T>(db: &Connection, sql: &str, p: impl Params, f: impl Fn(&Row) -> Sql<T>) -> Sql<Vec<T>> {
    db.prepare_cached(sql)?.query_map(p, f)?.collect()
}

/// A try from its row's first five columns (`KEY`).
fn key(row: &Row) -> Sql<TaskKey> {
    let (dag, task, run): (String, String, String) = (row.get(0)?, row.get(1)?, row.get(2)?);
    Ok(TaskKey::new(dag, task, run, row.get(4)?).with_map_index(row.get(3)?))
}

/// A task instance's pod template: the worker's image and command, in its row's namespace.
fn template(namespace: Option<String>) -> PodTemplate {
    let mut template = PodTemplate::default();
    (template.namespace, template.image) = (namespace, Some("airflow:3.3.2".into()));
    template.args = vec!["execute_workload".into()];
    template
}

/// One of Airflow's state names (`up_for_retry`) as the core's enum (`TaskState`, `JobState`).
fn parse<T: serde::de::DeserializeOwned>(name: String) -> Sql<T> {
    serde_json::from_value(name.into())
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, Type::Text, e.into()))
}

/// Answers a probe with the executor's health: 200 if healthy, else 503, and why as JSON.
async fn respond(mut conn: TcpStream, health: Health) {
    let _ = conn.read(&mut [0; 1024]).await;
    let code = if health.is_healthy() { 200 } else { 503 };
    let body = serde_json::to_string(&health).unwrap_or_default();
    let length = body.len();
    let response = format!("HTTP/1.1 {code} \r\ncontent-length: {length}\r\n\r\n{body}");
    let _ = conn.write_all(response.as_bytes()).await;
}

struct Host {
    ex: Executor,
    db: Connection,
    /// Where API calls go, and where their answers (and the watches' events) come back.
    api: (Client, Inbox),
}

impl Host {
    fn log(&self, what: String) {
        eprintln!("[{}] {what}", self.ex.scheduler_id());
    }

    /// The drive rule: after an input (if any), every command the executor has is carried out.
    fn drive(&mut self, input: Option<Input>) {
        if let Some(Err(e)) = input.map(|input| self.ex.handle_input(now(), input)) {
            self.log(format!("input refused: {e}"));
        }
        while let Some(Command { id, kind }) = self.ex.poll_command() {
            match kind {
                CommandKind::Db(query) => {
                    let answer = self.query(query).map_err(|e| e.to_string());
                    let outcome = answer.unwrap_or_else(|reason| DbOutcome::Unavailable { reason });
                    self.drive(Some(Input::DbResult { id, outcome }));
                }
                CommandKind::Notice(Report { key, state, reason }) => {
                    let why = reason.map(|r| format!(": {r}")).unwrap_or_default();
                    self.log(format!("report {key} {state:?}{why}"));
                    let failed = state == ReportedState::Failed;
                    self.write_try(key, if failed { FAILED } else { SUCCEEDED });
                }
                CommandKind::Notice(Requeue { key, cause, .. }) => {
                    self.log(format!("requeue {key}: {cause}"));
                }
                CommandKind::Notice(OrphansResolved { adopted, reset }) => {
                    if !adopted.is_empty() {
                        let n = adopted.len();
                        self.log(format!("adopted {n} task instances from dead schedulers"));
                    }
                    reset.into_iter().for_each(|key| self.write_try(key, RESET));
                }
                // A namespace's watch is started again only once it has ended (`WatchExpired`).
                CommandKind::Api(_) | CommandKind::Notice(WatchPods { .. }) => {
                    let (client, inbox) = self.api.clone();
                    if let Some(request) = k8s::request(&kind) {
                        tokio::spawn(run(client, id, request, inbox));
                    }
                }
            }
        }
    }

    fn query(&self, query: DbQuery) -> Sql<DbOutcome> {
        let keys = match query {
            DbQuery::QueryTaskStates { keys } => keys,
            DbQuery::QueryUnfinishedTasks => {
                let tasks = rows(&self.db, UNFINISHED, [], key)?;
                return Ok(DbOutcome::UnfinishedTasks { tasks });
            }
        };
        let sql = format!("SELECT state FROM task_instance {TRY}");
        let mut select = self.db.prepare_cached(&sql)?;
        let mut states = Vec::new();
        for k in keys {
            let row = (&k.dag_id, &k.task_id, &k.run_id, k.map_index, k.try_number);
            // No row at that try: the try is over (no state).
            let state = select.query_row(row, |r| r.get(0)).optional()?;
            states.push((k, state.map(parse).transpose()?));
        }
        Ok(DbOutcome::TaskStates { states })
    }

    /// Sets the try `k`, if it is still queued or running and this scheduler's (a peer may have
    /// adopted it while this one stalled: its report is not this one's to apply).
    fn write_try(&self, k: TaskKey, set: &str) {
        let sql = format!("UPDATE task_instance SET {set}, updated_at = ?6 {TRY}");
        let sql = format!("{sql} AND state IN ('queued', 'running') AND queued_by_job_id = ?7");
        let (dag, task, run, me) = (&k.dag_id, &k.task_id, &k.run_id, self.ex.scheduler_id());
        let row = (dag, task, run, k.map_index, k.try_number, unix_ms(), me);
        if let Err(e) = self.db.execute(&sql, row) {
            self.log(format!("DB write for {k} failed: {e}"));
        }
    }

    /// One scheduler loop: when the next is due, or an error once this scheduler's job is over.
    fn tick(&mut self, parallelism: usize) -> Result<Duration, String> {
        let (id, now) = (self.ex.scheduler_id().to_string(), unix_ms());
        let beat = "UPDATE job SET latest_heartbeat = ?1 WHERE id = ?2 AND state = 'running'";
        match self.db.execute(beat, (now, &id)) {
            Ok(0) => return Err(format!("[{id}] job not running: killed externally")),
            Ok(_) => {}
            Err(e) => self.log(format!("heartbeat failed: {e}")),
        }
        let jobs = "SELECT id, state, latest_heartbeat FROM job";
        let snapshot = rows(&self.db, jobs, [], |r| {
            Ok(HeartbeatRecord {
                scheduler_id: r.get(0)?,
                state: parse(r.get(1)?).unwrap_or(JobState::Other),
                latest_heartbeat: Timestamp(r.get(2)?),
            })
        });
        let snapshot = snapshot.map_err(|e| e.to_string());
        let snapshot = snapshot.map_err(|reason| HeartbeatsUnavailable { reason });
        self.drive(Some(Input::Heartbeats { snapshot }));
        let open = parallelism.saturating_sub(self.ex.state_size().tasks);
        let values = named_params! { ":me": id, ":now": now, ":open": open };
        match rows(&self.db, CLAIM, values, |r| Ok((key(r)?, r.get(5)?))) {
            Ok(claimed) => claimed.into_iter().for_each(|(key, namespace)| {
                self.log(format!("submitted {key}"));
                let template = template(namespace);
                self.drive(Some(Input::Submit { key, template }));
            }),
            Err(e) => self.log(format!("queueing failed: {e}")),
        }
        // A loop drifts a little, as a real one does: no scheduler always comes first.
        let drift = 0.9 + (RandomState::new().hash_one(()) % 200) as f64 / 1000.0;
        Ok(Duration::from_secs_f64(
            self.ex.config().scheduler_idle_sleep_time * drift,
        ))
    }

    /// Airflow's `adopt_or_reset_orphaned_tasks`: the peers the executor judges dead are marked
    /// failed (unless they heartbeated since), and the orphaned rows handed to the executor.
    fn hand_over_orphans(&mut self) -> Sql<()> {
        let Some(dead) = self.ex.dead_peer_records() else {
            return Ok(());
        };
        let fail = "UPDATE job SET state = 'failed' \
            WHERE id = ?1 AND state = 'running' AND latest_heartbeat = ?2";
        for peer in dead {
            self.db
                .execute(fail, (&peer.scheduler_id, peer.latest_heartbeat.0))?;
        }
        let tx = self.db.transaction_with_behavior(Immediate)?;
        let select = format!("SELECT {KEY}, namespace, queued_by_job_id {ORPHANED}");
        let tis = rows(&tx, &select, [], |r| {
            Ok(OrphanTask {
                key: key(r)?,
                queued_by: r.get(6)?,
                template: Some(template(r.get(5)?)),
            })
        })?;
        let adopt = "UPDATE task_instance SET queued_by_job_id = ?1, updated_at = ?2";
        let adopt = format!("{adopt} WHERE rowid IN (SELECT rowid {ORPHANED})");
        tx.execute(&adopt, (self.ex.scheduler_id(), unix_ms()))?;
        tx.commit()?;
        if !tis.is_empty() {
            self.drive(Some(Input::AdoptOrphans { tis }));
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut args: HashMap<_, _> = argv.chunks(2).map(|f| (f[0].clone(), f.get(1))).collect();
    let mut arg = |name: &str| args.remove(name).flatten().cloned();
    let (Some(server), Some(db), Some(id)) = (arg("--server"), arg("--db"), arg("--id")) else {
        return Err(USAGE.into());
    };
    // The executor's settings (TOML, as a scenario's `[config]`), then the policy preset's.
    let config = arg("--config").map(std::fs::read_to_string).transpose()?;
    let config: Config = toml::from_str(config.as_deref().unwrap_or(""))?;
    let preset = arg("--preset").unwrap_or_else(|| "default".into());
    let config = podwarden_sim::scenario::apply_policy(&preset, config)?;
    let parallelism = arg("--parallelism").map_or(Ok(32), |n| n.parse())?;
    let health = OptionFuture::from(arg("--health").map(TcpListener::bind)).await;
    let health = health.transpose()?;
    if let Some(unknown) = args.keys().next() {
        return Err(format!("unknown option {unknown}\n{USAGE}").into());
    }

    let (inbox, mut inputs) = mpsc::unbounded_channel();
    let api = (Client::try_from(kube::Config::new(server.parse()?))?, inbox);
    let ex = Executor::new(config, id, now())?;
    let period = |secs| tokio::time::interval(Duration::from_secs_f64(secs));
    let mut ticks = period(ex.config().scheduler_idle_sleep_time);
    let mut orphan_checks = period(ex.config().orphaned_tasks_check_interval);
    let db = Connection::open(db)?;
    db.busy_timeout(Duration::from_secs(5))?;
    let start = "INSERT INTO job (id, job_type, state, latest_heartbeat) \
        VALUES (?1, 'SchedulerJob', 'running', ?2)";
    db.execute(start, (ex.scheduler_id(), unix_ms()))?;
    let mut host = Host { ex, db, api };
    host.drive(None);

    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        let deadline = host.ex.poll_timeout();
        let wait = deadline.map_or(u64::MAX, |at| at.since(now()));
        let probe = OptionFuture::from(health.as_ref().map(TcpListener::accept));
        tokio::select! {
            Some(input) = inputs.recv() => host.drive(Some(input)),
            () = tokio::time::sleep(Duration::from_millis(wait)) => {
                host.ex.handle_timeout(now());
                host.drive(None);
            }
            // Answered by the loop: a loop that is stuck does not answer, and the probe fails.
            Some(Ok((conn, _))) = probe => drop(tokio::spawn(respond(conn, host.ex.health(now())))),
            _ = ticks.tick() => ticks.reset_after(host.tick(parallelism)?),
            _ = orphan_checks.tick() => if let Err(e) = host.hand_over_orphans() {
                host.log(format!("orphan check failed: {e}"));
            },
            _ = sigterm.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    let stop = "UPDATE job SET state = 'success' WHERE id = ?1 AND state = 'running'";
    host.db.execute(stop, [host.ex.scheduler_id()])?;
    Ok(())
}
