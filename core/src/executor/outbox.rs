//! The outbox: command ids, the commands for the host in order, API commands held behind the
//! token bucket, and what each command awaiting an answer is for. An answer is paired with its
//! command here, and an answer of the wrong kind (a DB answer to an API call, a list answer to a
//! patch) is refused here, before any decision sees it.

use std::collections::{BTreeMap, VecDeque};

use super::awaiting::Awaiting;
use crate::budget::TokenBucket;
use crate::command::{ApiCall, ApiOutcome, Command, CommandId, DbQuery, Notice};
use crate::db::DbOutcome;
use crate::input::InputError;
use crate::time::Timestamp;

/// Commands for the host, and the answers they wait for.
#[derive(Debug, Clone)]
pub(super) struct Outbox {
    next_id: u64,
    /// Ready for the host, in order.
    ready: VecDeque<Command>,
    /// API commands waiting for the budget, in order.
    held: VecDeque<Command>,
    budget: TokenBucket,
    awaiting: BTreeMap<CommandId, Awaiting>,
    /// Of `awaiting`, the pod creates: sent or held, not yet answered.
    creates_unanswered: usize,
}

impl Outbox {
    pub(super) fn new(budget: TokenBucket) -> Self {
        Self {
            next_id: 0,
            ready: VecDeque::new(),
            held: VecDeque::new(),
            budget,
            awaiting: BTreeMap::new(),
            creates_unanswered: 0,
        }
    }

    /// A fresh id: for a command, or as a sequence number that orders work in issue order.
    pub(super) fn next_command_id(&mut self) -> CommandId {
        let id = CommandId(self.next_id);
        self.next_id += 1;
        id
    }

    /// Queues a command that needs no API budget and no answer.
    pub(super) fn emit(&mut self, notice: Notice) -> CommandId {
        let id = self.next_command_id();
        self.ready.push_back(Command {
            id,
            kind: notice.into(),
        });
        id
    }

    /// Queues a DB query (no API budget) and remembers what its answer is for.
    pub(super) fn emit_query(&mut self, query: DbQuery, awaiting: Awaiting) -> CommandId {
        let id = self.next_command_id();
        self.ready.push_back(Command {
            id,
            kind: query.into(),
        });
        self.awaiting.insert(id, awaiting);
        id
    }

    /// Queues an API command behind the token bucket, keeping API commands in order.
    pub(super) fn emit_api(
        &mut self,
        call: ApiCall,
        awaiting: Awaiting,
        now: Timestamp,
    ) -> CommandId {
        let id = self.next_command_id();
        let cmd = Command {
            id,
            kind: call.into(),
        };
        if self.held.is_empty() && self.budget.try_take(now) {
            self.ready.push_back(cmd);
        } else {
            self.held.push_back(cmd);
        }
        if matches!(awaiting, Awaiting::Create { .. }) {
            self.creates_unanswered += 1;
        }
        self.awaiting.insert(id, awaiting);
        id
    }

    /// Takes `id` out of the commands awaiting an answer.
    fn forget(&mut self, id: CommandId) -> Option<Awaiting> {
        let awaiting = self.awaiting.remove(&id)?;
        if matches!(awaiting, Awaiting::Create { .. }) {
            self.creates_unanswered = self.creates_unanswered.saturating_sub(1);
        }
        Some(awaiting)
    }

    /// Pod creates sent (or held) and not yet answered.
    pub(super) fn creates_unanswered(&self) -> usize {
        self.creates_unanswered
    }

    /// Sends held commands as the budget allows; drops those `is_obsolete` says no longer make
    /// sense (a clean-up of a pod that has gone meanwhile, a create for a try that ended), so that
    /// no command ever targets a pod the watch already showed gone.
    pub(super) fn release_held(&mut self, now: Timestamp, is_obsolete: impl Fn(&Awaiting) -> bool) {
        while let Some(front) = self.held.front() {
            let id = front.id;
            if self.awaiting.get(&id).is_some_and(&is_obsolete) {
                self.held.pop_front();
                self.forget(id);
                continue;
            }
            if !self.budget.try_take(now) {
                break;
            }
            if let Some(cmd) = self.held.pop_front() {
                self.ready.push_back(cmd);
            }
        }
    }

    /// The next command for the host.
    pub(super) fn poll(&mut self) -> Option<Command> {
        self.ready.pop_front()
    }

    /// When the budget lets the first held command go, if one is held.
    pub(super) fn budget_wake_at(&self) -> Option<Timestamp> {
        (!self.held.is_empty()).then(|| self.budget.next_token_at())
    }

    /// What the command `id` awaits, while it is unanswered.
    pub(super) fn awaiting(&self, id: CommandId) -> Option<&Awaiting> {
        self.awaiting.get(&id)
    }

    /// Commands sent (or held) and not yet answered.
    pub(super) fn unanswered(&self) -> usize {
        self.awaiting.len()
    }

    /// Commands waiting for the API budget.
    pub(super) fn held(&self) -> usize {
        self.held.len()
    }

    /// Pairs an API answer with its command and takes what the command was for.
    ///
    /// # Errors
    /// [`InputError::UnknownCommand`] for an id not awaiting an answer;
    /// [`InputError::UnexpectedOutcome`] for an answer of the wrong kind (the command stays
    /// awaiting its answer).
    pub(super) fn take_api_answer(
        &mut self,
        id: CommandId,
        outcome: &ApiOutcome,
    ) -> Result<Awaiting, InputError> {
        let Some(awaiting) = self.awaiting.get(&id) else {
            return Err(InputError::UnknownCommand(id));
        };
        let is_list = matches!(outcome, ApiOutcome::Listed { .. });
        let expected = if awaiting.wants_db() {
            Some("a DB answer")
        } else if awaiting.wants_list() && matches!(outcome, ApiOutcome::Ok) {
            Some("a pod list or a failure")
        } else if !awaiting.wants_list() && is_list {
            Some("ok or a failure")
        } else {
            None
        };
        if let Some(expected) = expected {
            return Err(InputError::UnexpectedOutcome { id, expected });
        }
        self.forget(id).ok_or(InputError::UnknownCommand(id))
    }

    /// Pairs a DB answer with its query and takes what the query was for.
    ///
    /// # Errors
    /// As [`Self::take_api_answer`].
    pub(super) fn take_db_answer(
        &mut self,
        id: CommandId,
        outcome: &DbOutcome,
    ) -> Result<Awaiting, InputError> {
        let Some(awaiting) = self.awaiting.get(&id) else {
            return Err(InputError::UnknownCommand(id));
        };
        let expected = match (awaiting, outcome) {
            (
                Awaiting::TaskState(_),
                DbOutcome::TaskStates { .. } | DbOutcome::Unavailable { .. },
            )
            | (
                Awaiting::ZombieQuery { .. } | Awaiting::LeftoverQuery { .. },
                DbOutcome::UnfinishedTasks { .. } | DbOutcome::Unavailable { .. },
            ) => None,
            (Awaiting::TaskState(_), _) => Some("task states or unavailable"),
            (Awaiting::ZombieQuery { .. } | Awaiting::LeftoverQuery { .. }, _) => {
                Some("unfinished tasks or unavailable")
            }
            _ => Some("an API answer"),
        };
        if let Some(expected) = expected {
            return Err(InputError::UnexpectedOutcome { id, expected });
        }
        self.forget(id).ok_or(InputError::UnknownCommand(id))
    }
}
