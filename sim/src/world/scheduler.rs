//! Schedulers: each hosts one executor and drives it exactly by the drive rule (one input, then
//! drain every command), on its own clock (which a fault can skew). A scheduler loop heartbeats,
//! queues schedulable task instances, hands orphans of dead schedulers to its executor, and
//! revokes tries stuck in QUEUED, as Airflow's scheduler does. A liveness probe restarts a
//! scheduler whose progress-based health turns unhealthy (a stalled loop).

use podwarden_core::adoption::OrphanTask;
use podwarden_core::command::{ApiCall, DbQuery, Notice};
use podwarden_core::db::TaskState;
use podwarden_core::label;
use podwarden_core::liveness::{HeartbeatsUnavailable, JobState};
use podwarden_core::{Command, CommandKind, Executor, Input, PodTemplate, ReportedState, TaskKey};

use super::db::Job;
use super::event::Ev;
use super::sched_state::{
    Status, PROBE_FAILURES, PROBE_PERIOD, QUEUE_PER_LOOP, STUCK_CHECK_INTERVAL,
    TASK_QUEUED_TIMEOUT, ZOMBIE_CHECK_INTERVAL,
};
use super::World;
use crate::time::{secs, Ms};

impl World {
    /// Starts (or restarts, with a new job id) scheduler `i`.
    pub(crate) fn start_scheduler(&mut self, i: u32) {
        let id = self.next_job_id.to_string();
        self.next_job_id += 1;
        let now = self.now;
        let loop_ms = self.scenario.scheduler_loop_ms;
        let s = &mut self.scheds[i as usize];
        s.inc += 1;
        s.id.clone_from(&id);
        s.status = Status::Up;
        // A restarted process is still cut off if its partition lasts.
        s.partitioned = s.partitioned_until > now;
        s.timer_at = None;
        s.buffered.clear();
        s.next_heartbeat = now;
        s.next_orphan_check = now;
        s.next_stuck_check = now + STUCK_CHECK_INTERVAL;
        s.next_zombie_check = now + ZOMBIE_CHECK_INTERVAL;
        s.unhealthy_since = None;
        let local = s.local(now);
        let policies = self.policies.clone();
        let s = &mut self.scheds[i as usize];
        match Executor::new(self.config.clone(), id.clone(), local) {
            Ok(ex) => s.exec = Some(ex.with_policies(policies)),
            Err(_) => {
                s.status = Status::Down;
                return;
            }
        }
        self.db.jobs.insert(
            id.clone(),
            Job {
                state: JobState::Running,
                heartbeat: local,
            },
        );
        self.checker.scheduler_started(i, &id, now);
        self.api.close_watches(i);
        self.drain(i);
        // Spread the schedulers' loops so they do not tick in lockstep.
        let inc = self.scheds[i as usize].inc;
        self.after(
            loop_ms / 2 + u64::from(i) * 37,
            Ev::SchedLoop { sched: i, inc },
        );
    }

    /// Stops scheduler `i` (crash or kill). Its job row stays `running` with a stale heartbeat,
    /// as a dead process leaves it.
    pub(crate) fn stop_scheduler(&mut self, i: u32) {
        let s = &mut self.scheds[i as usize];
        s.exec = None;
        s.status = Status::Down;
        s.buffered.clear();
        let id = s.id.clone();
        self.api.close_watches(i);
        self.checker.scheduler_stopped(&id, self.now);
        for ti in &mut self.db.tis {
            if ti.adopting_by.as_deref() == Some(id.as_str()) {
                ti.adopting_by = None;
            }
        }
    }

    pub(crate) fn scheduler_loop(&mut self, i: u32, inc: u32) {
        if self.scheds[i as usize].status != Status::Up || self.scheds[i as usize].inc != inc {
            return;
        }
        let now = self.now;
        let (hb_period, loop_ms) = (self.scenario.heartbeat_ms, self.scenario.scheduler_loop_ms);
        if now >= self.scheds[i as usize].next_heartbeat {
            self.scheds[i as usize].next_heartbeat = now + hb_period;
            self.heartbeat(i);
        }
        if !self.db.outage {
            self.queue_tasks(i);
            if now >= self.scheds[i as usize].next_orphan_check {
                self.scheds[i as usize].next_orphan_check =
                    now + secs(self.config.orphaned_tasks_check_interval);
                self.hand_over_orphans(i);
            }
            if now >= self.scheds[i as usize].next_stuck_check {
                self.scheds[i as usize].next_stuck_check = now + STUCK_CHECK_INTERVAL;
                self.revoke_stuck(i);
            }
            if now >= self.scheds[i as usize].next_zombie_check {
                self.scheds[i as usize].next_zombie_check = now + ZOMBIE_CHECK_INTERVAL;
                self.fail_zombie_tasks();
            }
        }
        // Loops drift a little, as real ones do, so no scheduler always comes first.
        let jitter = rand::Rng::random_range(&mut self.rng_sched, 0..=loop_ms / 5);
        self.after(
            loop_ms - loop_ms / 10 + jitter,
            Ev::SchedLoop { sched: i, inc },
        );
    }

    fn heartbeat(&mut self, i: u32) {
        let (id, local, inc) = {
            let s = &self.scheds[i as usize];
            (s.id.clone(), s.local(self.now), s.inc)
        };
        // Airflow's scheduler exits when it finds its own job row marked failed ("killed
        // externally"); its replacement starts with a new id.
        if !self.db.outage
            && self
                .db
                .jobs
                .get(&id)
                .is_some_and(|j| j.state != JobState::Running)
        {
            self.summary.killed_externally += 1;
            self.stop_scheduler(i);
            self.after(5_000, Ev::Restart { sched: i });
            return;
        }
        let snapshot = if self.db.outage {
            Err(HeartbeatsUnavailable {
                reason: "metadata DB unreachable".into(),
            })
        } else {
            if let Some(job) = self.db.jobs.get_mut(&id) {
                job.heartbeat = local;
            }
            Ok(self.db.heartbeat_records())
        };
        self.deliver(i, inc, Input::Heartbeats { snapshot });
    }

    fn queue_tasks(&mut self, i: u32) {
        let now = self.now;
        // Airflow's `[core] parallelism`: open slots are what the executor does not run yet.
        let running = self.scheds[i as usize]
            .exec
            .as_ref()
            .map_or(0, |ex| ex.state_size().tasks);
        let parallelism = self.scenario.parallelism as usize;
        let open = parallelism.saturating_sub(running).min(QUEUE_PER_LOOP);
        let ready: Vec<(Ms, usize)> = self
            .db
            .schedulable
            .range(..=(now, usize::MAX))
            .take(open)
            .copied()
            .collect();
        let (id, inc) = (
            self.scheds[i as usize].id.clone(),
            self.scheds[i as usize].inc,
        );
        for entry in ready {
            self.db.schedulable.remove(&entry);
            if self.db.tis[entry.1].state() != Some(TaskState::Scheduled) {
                continue;
            }
            self.db.set_state(entry.1, Some(TaskState::Queued));
            let ti = &mut self.db.tis[entry.1];
            ti.queued_by = Some(id.clone());
            ti.queued_at = now;
            ti.tries.queued(ti.key.try_number, now);
            let key = ti.key.clone();
            self.checker.submitted(&key);
            let template = template(&self.scenario.load.namespaces, entry.1);
            self.deliver(i, inc, Input::Submit { key, template });
        }
    }

    /// Airflow's `adopt_or_reset_orphaned_tasks`, judging peers by the executor's liveness
    /// verdict: schedulers it knows and judges dead are marked failed, and the task instances
    /// queued by schedulers that are not running are handed to this executor.
    fn hand_over_orphans(&mut self, i: u32) {
        let Some(dead) = self.scheds[i as usize]
            .exec
            .as_ref()
            .and_then(Executor::dead_peer_records)
        else {
            return;
        };
        let (id, inc) = (
            self.scheds[i as usize].id.clone(),
            self.scheds[i as usize].inc,
        );
        // A conditional write on the heartbeat judged stale: a peer that heartbeated since the
        // executor's snapshot (its stall ended) keeps its row.
        for record in &dead {
            if let Some(job) = self.db.jobs.get_mut(&record.scheduler_id) {
                if job.state == JobState::Running && job.heartbeat == record.latest_heartbeat {
                    job.state = JobState::Failed;
                }
            }
        }
        let running: Vec<String> = self
            .db
            .jobs
            .iter()
            .filter(|(_, j)| j.state == JobState::Running)
            .map(|(k, _)| k.clone())
            .collect();
        let orphaned: Vec<usize> = self
            .db
            .in_flight_tis()
            .filter(|(_, ti)| {
                ti.adopting_by.is_none()
                    && ti.queued_by.as_ref().is_none_or(|q| !running.contains(q))
            })
            .map(|(idx, _)| idx)
            .collect();
        let mut tis = Vec::new();
        for idx in orphaned {
            let template = template(&self.scenario.load.namespaces, idx);
            let ti = &mut self.db.tis[idx];
            ti.adopting_by = Some(id.clone());
            tis.push(OrphanTask {
                key: ti.key.clone(),
                queued_by: ti.queued_by.clone(),
                template: Some(template),
            });
        }
        if !tis.is_empty() {
            self.summary.orphans_handed_over += tis.len() as u64;
            self.deliver(i, inc, Input::AdoptOrphans { tis });
        }
    }

    /// Airflow's stuck-in-queued handling: revoke, then reschedule the same try (twice), then
    /// fail it.
    fn revoke_stuck(&mut self, i: u32) {
        let now = self.now;
        let (id, inc) = (
            self.scheds[i as usize].id.clone(),
            self.scheds[i as usize].inc,
        );
        let stuck: Vec<usize> = self
            .db
            .in_flight_tis()
            .filter(|(_, ti)| {
                ti.state() == Some(TaskState::Queued)
                    && ti.queued_by.as_deref() == Some(id.as_str())
                    && now.saturating_sub(ti.queued_at) > TASK_QUEUED_TIMEOUT
            })
            .map(|(t, _)| t)
            .collect();
        for t in stuck {
            let key = self.db.tis[t].key.clone();
            self.checker.abandoned(&key);
            self.deliver(i, inc, Input::Revoke { key: key.clone() });
            self.summary.stuck_revoked += 1;
            self.summary.coverage.count("revoke stuck in queued");
            let ti = &mut self.db.tis[t];
            if ti.stuck_resets < 2 {
                ti.stuck_resets += 1;
                self.db.make_schedulable(t, now);
            } else {
                // The task fails for good: charged to the user like any failure.
                let never_started = !ti.started.contains(&key.try_number);
                ti.queued_by = None;
                ti.done_at = Some(now);
                ti.tries
                    .ended(key.try_number, now, false, "stuck in queued");
                self.db.set_state(t, Some(TaskState::Failed));
                self.checker.retry_consumed(&key, never_started, now);
                let cause = format!(
                    "stuck in queued: revoked 3 times after {} s each",
                    crate::time::secs_text(TASK_QUEUED_TIMEOUT)
                );
                self.failed_try_cause(&key, cause, false, !never_started, Some(i));
            }
        }
    }

    /// Airflow's zombie task instances: RUNNING, with a task process that has not heartbeated for
    /// `zombie_task_threshold_s` (its node was lost, it was killed without a word). The scheduler
    /// fails the try (a user retry if any is left: the task had started).
    fn fail_zombie_tasks(&mut self) {
        let threshold = secs(self.scenario.zombie_task_threshold_s);
        for idx in self.db.zombie_tasks(self.now, threshold) {
            self.summary.zombie_tasks_failed += 1;
            self.summary.coverage.count("zombie task instance failed");
            let key = self.db.tis[idx].key.clone();
            self.checker.abandoned(&key);
            self.checker.retry_consumed(&key, false, self.now);
            self.fail_try(
                idx,
                format!(
                    "zombie task instance: no task heartbeat for {} s",
                    crate::time::secs_text(threshold)
                ),
                None,
            );
        }
    }

    /// Feeds one input to scheduler `i`'s executor (if that incarnation still runs) and drains
    /// it: the drive rule.
    pub(crate) fn deliver(&mut self, i: u32, inc: u32, input: Input) {
        let s = &mut self.scheds[i as usize];
        if s.inc != inc || s.exec.is_none() {
            return;
        }
        if let Status::Stalled { .. } = s.status {
            s.buffered.push(input);
            return;
        }
        self.record_io(i, "input", &input);
        let local = self.scheds[i as usize].local(self.now);
        let result = match self.scheds[i as usize].exec.as_mut() {
            Some(ex) => ex.handle_input(local, input),
            None => return,
        };
        if let Err(e) = result {
            self.record_io(i, "input_error", &e.to_string());
        }
        self.drain(i);
    }

    pub(crate) fn exec_timer(&mut self, i: u32, inc: u32, gen: u64) {
        let s = &mut self.scheds[i as usize];
        if s.inc != inc || s.timer_gen != gen || s.status != Status::Up {
            return;
        }
        s.timer_at = None;
        let local = s.local(self.now);
        if let Some(ex) = s.exec.as_mut() {
            ex.handle_timeout(local);
        }
        self.drain(i);
    }

    /// Executes every command the executor has, then re-arms its timer.
    fn drain(&mut self, i: u32) {
        while let Some(cmd) = self.scheds[i as usize]
            .exec
            .as_mut()
            .and_then(Executor::poll_command)
        {
            self.record_io(i, "command", &cmd);
            self.execute(i, cmd);
        }
        let s = &mut self.scheds[i as usize];
        let Some(deadline) = s.exec.as_ref().and_then(Executor::poll_timeout) else {
            return;
        };
        let at = s.world_time(deadline).max(self.now);
        if s.timer_at != Some(at) {
            s.timer_gen += 1;
            s.timer_at = Some(at);
            let (gen, inc) = (s.timer_gen, s.inc);
            self.at(at, Ev::ExecTimer { sched: i, inc, gen });
        }
    }

    fn execute(&mut self, i: u32, cmd: Command) {
        let inc = self.scheds[i as usize].inc;
        let id = self.scheds[i as usize].id.clone();
        match &cmd.kind {
            CommandKind::Api(ApiCall::CreatePod { .. }) => {
                self.scheds[i as usize].count().creates += 1
            }
            CommandKind::Api(ApiCall::PatchLabels { labels, .. }) => {
                let c = self.scheds[i as usize].count();
                c.patches += 1;
                if labels.contains_key(label::AIRFLOW_WORKER) {
                    c.owner_patches += 1;
                }
            }
            CommandKind::Api(ApiCall::DeletePod {
                grace_period_seconds,
                ..
            }) => {
                if *grace_period_seconds == Some(0) {
                    self.summary.force_deletes += 1;
                    self.summary.coverage.count("zombie force-delete");
                } else {
                    self.summary.coverage.count("delete pod");
                }
                self.scheds[i as usize].count().deletes += 1;
            }
            CommandKind::Api(ApiCall::ListPods { .. }) => {
                self.scheds[i as usize].count().lists += 1
            }
            CommandKind::Db(DbQuery::QueryTaskStates { .. })
            | CommandKind::Db(DbQuery::QueryUnfinishedTasks) => {
                self.scheds[i as usize].count().db_queries += 1;
            }
            _ => {}
        }
        match cmd.kind {
            CommandKind::Api(ApiCall::CreatePod { .. })
            | CommandKind::Api(ApiCall::PatchLabels { .. })
            | CommandKind::Api(ApiCall::DeletePod { .. })
            | CommandKind::Api(ApiCall::ListPods { .. }) => self.send_api(i, inc, cmd),
            CommandKind::Db(DbQuery::QueryTaskStates { .. })
            | CommandKind::Db(DbQuery::QueryUnfinishedTasks) => {
                let rtt = 2 * self.scenario.latency.db_ms;
                self.after(
                    rtt,
                    Ev::DbAnswer {
                        sched: i,
                        inc,
                        command: cmd,
                    },
                );
            }
            CommandKind::Notice(Notice::WatchPods {
                namespace,
                label_selector,
                resource_version,
            }) => {
                self.start_watch(i, inc, namespace, label_selector, &resource_version);
            }
            CommandKind::Notice(Notice::Report { key, state, reason }) => {
                self.summary.coverage.count(match state {
                    ReportedState::Succeeded => "report succeeded",
                    _ => "report failed",
                });
                if reason
                    .as_deref()
                    .is_some_and(|r| r.contains("worker_pods_pending_timeout"))
                {
                    self.summary.coverage.count("pending timeout");
                }
                self.checker.reported(&id, &key, state, self.now);
                self.on_report(i, &id, &key, state, reason);
            }
            CommandKind::Notice(Notice::Requeue {
                key,
                cause,
                failed_pod,
                ..
            }) => {
                *self
                    .summary
                    .requeues_by_cause
                    .entry(cause.to_string())
                    .or_default() += 1;
                self.summary.coverage.count("requeue");
                if matches!(
                    cause,
                    podwarden_core::requeue::RequeueCause::PendingTimeout(_)
                ) {
                    self.summary.coverage.count("pending timeout");
                }
                if let Some(idx) = self.db.find(&key) {
                    let now = self.now;
                    self.db.tis[idx].tries.requeued(key.try_number, now, &cause);
                }
                self.checker.requeued(&key, &failed_pod.name);
            }
            CommandKind::Notice(Notice::OrphansResolved { adopted, reset }) => {
                self.on_orphans_resolved(&id, &adopted, &reset)
            }
        }
    }

    fn on_orphans_resolved(&mut self, id: &str, adopted: &[TaskKey], reset: &[TaskKey]) {
        let now = self.now;
        for key in adopted {
            if let Some(idx) = self.db.find(key) {
                let ti = &mut self.db.tis[idx];
                ti.adopting_by = None;
                if ti.key.try_number == key.try_number {
                    ti.queued_by = Some(id.to_string());
                    self.summary.orphans_adopted += 1;
                    self.summary.coverage.count("adopt orphan");
                }
            }
        }
        for key in reset {
            self.checker.abandoned(key);
            if let Some(idx) = self.db.find(key) {
                let ti = &mut self.db.tis[idx];
                ti.adopting_by = None;
                if ti.key.try_number == key.try_number
                    && matches!(ti.state(), Some(TaskState::Queued | TaskState::Running))
                {
                    // Airflow's reset: a new try, not a user retry.
                    ti.key.try_number += 1;
                    ti.stuck_resets = 0;
                    self.summary.orphans_reset += 1;
                    self.summary.coverage.count("reset orphan");
                    self.db.make_schedulable(idx, now);
                }
            }
        }
    }

    /// The liveness probe: every scheduler's in-process health endpoint. One whose loop has not
    /// run for too long (`not_driven`) is restarted, as a Kubernetes liveness probe would.
    pub(crate) fn probe(&mut self) {
        let now = self.now;
        self.check_core_state();
        for i in 0..self.scheds.len() as u32 {
            let s = &mut self.scheds[i as usize];
            let Some(ex) = s.exec.as_ref() else { continue };
            let health = ex.health(s.local(now));
            if let Status::Stalled { .. } = s.status {
                self.checker.stall_probe(i, health.is_healthy(), now);
            }
            let s = &mut self.scheds[i as usize];
            if health.reasons.not_driven {
                let since = *s.unhealthy_since.get_or_insert(now);
                if now - since >= PROBE_PERIOD * (PROBE_FAILURES - 1) {
                    self.summary.probe_restarts += 1;
                    self.stop_scheduler(i);
                    self.after(5_000, Ev::Restart { sched: i });
                }
            } else {
                s.unhealthy_since = None;
            }
        }
        self.after(PROBE_PERIOD, Ev::Probe);
    }

    /// A stall that ends by itself is over: the loop runs again with the executor's old state,
    /// first through everything that arrived meanwhile (peers may have judged it dead and taken
    /// its work: its next heartbeat tells it, as in Airflow).
    pub(crate) fn resume_scheduler(&mut self, i: u32, inc: u32) {
        let s = &mut self.scheds[i as usize];
        if s.inc != inc || !matches!(s.status, Status::Stalled { .. }) {
            return;
        }
        s.status = Status::Up;
        // Timer and loop events were dropped while stalled: both are armed again below.
        s.timer_at = None;
        let id = s.id.clone();
        let buffered = std::mem::take(&mut s.buffered);
        self.summary.stalls_resumed += 1;
        self.summary.coverage.count("stall that ends by itself");
        let job_running = self
            .db
            .jobs
            .get(&id)
            .is_some_and(|j| j.state == JobState::Running);
        self.checker.resumed(i, &id, job_running);
        if !job_running {
            self.summary
                .coverage
                .count("scheduler resumed after peers declared it dead");
        }
        for input in buffered {
            self.deliver(i, inc, input);
        }
        self.drain(i);
        self.after(1, Ev::SchedLoop { sched: i, inc });
    }

    pub(crate) fn stall_scheduler(&mut self, i: u32) {
        let now = self.now;
        let s = &mut self.scheds[i as usize];
        if s.status == Status::Up {
            s.status = Status::Stalled { since: now };
            let id = s.id.clone();
            self.checker.stalled(i, &id, now);
        }
    }
}

/// The namespace the load gives task instance `ti`: the load's `namespaces` in turn, by task
/// instance; none (the executor's `namespace`) without a list.
pub(super) fn task_namespace(namespaces: &[String], ti: usize) -> Option<String> {
    (!namespaces.is_empty()).then(|| namespaces[ti % namespaces.len()].clone())
}

/// The pod template of task instance `ti`, every simulated task's but for its namespace.
fn template(namespaces: &[String], ti: usize) -> PodTemplate {
    PodTemplate {
        namespace: task_namespace(namespaces, ti),
        image: Some("airflow:3.3.2".into()),
        args: vec!["execute_workload".into()],
        ..PodTemplate::default()
    }
}
