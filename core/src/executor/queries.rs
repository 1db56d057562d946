//! What a host, a test or the simulator can read from an [`Executor`]: its health, its peers'
//! verdicts, what it tracks and how much it holds. Nothing here changes the executor.

use super::state_size::StateSize;
use super::Executor;
use crate::config::Config;
use crate::health::{Health, UnhealthyReasons};
use crate::key::TaskKey;
use crate::label;
use crate::liveness::{AliveSet, HeartbeatRecord};
use crate::selector::LabelSelector;
use crate::time::Timestamp;

impl Executor {
    /// The executor's own health at `now` (the host's clock), from progress. O(1),
    /// allocation-free: a host can serve it from an in-process HTTP handler even when it cannot
    /// fork an exec probe.
    #[must_use]
    pub fn health(&self, now: Timestamp) -> Health {
        // The host's clock reads earlier than at its last drive: it stepped back since, and the
        // executor has not been driven on the new clock. How long it has been idle cannot be
        // measured; a loop that runs drives it within a loop, so this is named as both.
        let behind = now < self.clock.host_now();
        let now = self.clock.core_at(now);
        let idle_ms = now.since(self.last_driven);
        let threshold = self.settings.health_threshold_ms;
        let watch_stalled = !self.pods.is_empty()
            && self
                .settings
                .watch_stall_ms
                .is_some_and(|limit| now.since(self.last_watch_progress) > limit);
        let launch_stalled =
            self.launch.len() > 0 && now.since(self.last_launch_progress) > threshold;
        let clock_step = self
            .clock
            .last_step()
            .is_some_and(|step| now.since(step) <= threshold);
        Health {
            last_driven: self.clock.host_now(),
            idle_ms,
            reasons: UnhealthyReasons {
                not_driven: idle_ms > threshold || behind,
                watch_stalled,
                launch_stalled,
                clock_step: clock_step || behind,
            },
        }
    }

    /// The scheduler id this executor writes as its `airflow-worker` label.
    #[must_use]
    pub fn scheduler_id(&self) -> &str {
        &self.scheduler_id
    }

    /// The configuration in force.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The selector of this executor's own watch: `airflow-worker=<id>,airflow_executor_done!=True`.
    #[must_use]
    pub fn watch_selector(&self) -> LabelSelector {
        LabelSelector::new()
            .eq(label::AIRFLOW_WORKER, self.scheduler_id.clone())
            .ne(label::EXECUTOR_DONE, label::TRUE)
    }

    /// The last resource version the watch reached: the first watch's, where the executor runs
    /// one per namespace ([`Self::resource_versions`]).
    #[must_use]
    pub fn resource_version(&self) -> &str {
        self.watch
            .first()
            .map_or("", |w| w.resource_version.as_str())
    }

    /// Every watch's scope (its namespace, `None` for every namespace) and the last resource
    /// version it reached, in scope order ([`crate::Config::watch_scopes`]).
    pub fn resource_versions(&self) -> impl Iterator<Item = (Option<&str>, &str)> {
        self.watch.resource_versions()
    }

    /// Whether `key` is queued, running or being decided here.
    #[must_use]
    pub fn is_tracking(&self, key: &TaskKey) -> bool {
        self.tasks.contains_key(key)
    }

    /// The other schedulers this executor considers alive at its last heartbeat snapshot, or
    /// `None` while no snapshot was readable.
    #[must_use]
    pub fn alive_peers(&self) -> Option<Vec<String>> {
        match self.peers.alive_others(
            &self.scheduler_id,
            self.config.scheduler_liveness_rule,
            self.settings.health_threshold_ms,
        ) {
            AliveSet::Known(set) => Some(set.into_iter().collect()),
            AliveSet::Unknown | AliveSet::Unavailable => None,
        }
    }

    /// The other schedulers that the last readable heartbeat snapshot names and that this
    /// executor judges dead, or `None` while no snapshot was readable. A host uses it to mark
    /// scheduler jobs failed before handing their tries over: a scheduler the snapshot does not
    /// name yet (one that has just started) is never in it. Prefer [`Self::dead_peer_records`]:
    /// the verdict is as old as the last snapshot.
    #[must_use]
    pub fn dead_peers(&self) -> Option<Vec<String>> {
        let alive = self.alive_peers()?;
        Some(
            self.peers
                .known()
                .filter(|id| *id != self.scheduler_id && !alive.iter().any(|a| a == id))
                .map(str::to_string)
                .collect(),
        )
    }

    /// Like [`Self::dead_peers`], with each dead peer's row as last read: its `latest_heartbeat`
    /// is the value judged stale. Declare a peer dead with a conditional write on exactly that
    /// value (`UPDATE job SET state = 'failed' WHERE id = ? AND state = 'running' AND
    /// latest_heartbeat = ?`): a peer that heartbeated since the snapshot (a stall that ended by
    /// itself) then keeps its row, its work and its pods. Airflow gets the same effect by
    /// judging and marking in one transaction on a fresh read.
    #[must_use]
    pub fn dead_peer_records(&self) -> Option<Vec<HeartbeatRecord>> {
        let dead = self.dead_peers()?;
        Some(dead.iter().filter_map(|id| self.peers.record(id)).collect())
    }

    /// How much the executor holds.
    #[must_use]
    pub fn state_size(&self) -> StateSize {
        StateSize {
            tasks: self.tasks.len(),
            db_retries: self.db_retries.len(),
            pods: self.pods.len(),
            awaiting_replies: self.outbox.unanswered(),
            held_commands: self.outbox.held(),
            cleanup_retries: self.cleanup_retries.len(),
            orphan_rounds: self.orphan_rounds.len(),
            peers: self.peers.len(),
        }
    }
}
