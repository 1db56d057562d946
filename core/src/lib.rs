//! # podwarden-core
//!
//! The pod-lifecycle decisions of a Kubernetes task executor (Apache Airflow's
//! KubernetesExecutor is the model) as a deterministic, sans-IO state machine.
//!
//! The core performs no I/O, reads no clock, starts no thread and draws no random number. A
//! host (a real driver talking to the API server and the metadata DB, or the simulator) feeds
//! it [`Input`]s with the current time and executes the [`Command`]s it emits. Given the same
//! inputs at the same times, it emits the same commands in the same order, byte for byte.
//!
//! ## The drive rule
//!
//! After **every** mutation ([`Executor::new`], [`Executor::handle_input`],
//! [`Executor::handle_timeout`]) drain [`Executor::poll_command`] until it returns `None`, and
//! execute the commands in that order. Then wait until the next input arrives or until
//! [`Executor::poll_timeout`], whichever is first, and call [`Executor::handle_timeout`] when
//! the latter comes. Commands that call the API server must be answered exactly once with
//! [`Input::ApiResult`] quoting their [`CommandId`]; a timeout or a lost reply is an answer
//! ([`ApiFailure::Timeout`]).
//!
//! ## Which clock to pass
//!
//! Pass a **monotonic** clock as `now` (`std::time::Instant` turned into milliseconds):
//! every timer, back-off and health verdict is a difference of `now`s, and
//! [`Executor::poll_timeout`] answers on the same clock. Heartbeats written to the metadata DB
//! are wall-clock values; with the default liveness rule the core only compares them for change.
//! (With Airflow's `written_timestamp` rule `now` is compared with them, so it must then be the
//! wall clock they are written with.) Deliver a heartbeat snapshot every scheduler loop
//! ([`Input::Heartbeats`], at least every half `scheduler_health_check_threshold`), readable or
//! not: peers are judged only over regular snapshots.
//!
//! A host whose clock steps anyway (NTP, a VM migration) keeps working: the core keeps its own
//! monotonic time. A step back neither freezes nor rewinds it; a reading later than the next
//! deadline by more than half the threshold counts only as that much (a stall of the host and a
//! jump of its clock look the same). Either way [`Executor::health`] names it
//! ([`UnhealthyReasons::clock_step`]) for a threshold, peers get a fresh stretch of observation
//! before any is judged dead, and reports wait until a heartbeat snapshot shows this scheduler's
//! own job still running (`fence_reports_after_stall`).
//!
//! ```
//! use podwarden_core::command::ApiCall;
//! use podwarden_core::{
//!     ApiOutcome, Command, CommandKind, Config, Executor, Input, PodTemplate, TaskKey, Timestamp,
//! };
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut now = Timestamp(0);
//! let mut ex = Executor::new(Config::default(), "5", now)?;
//! let mut answers = Vec::new();
//! let mut log = Vec::new();
//! let name = |debug: String| debug.split_whitespace().next().unwrap_or("").to_string();
//!
//! // A toy host: every API call succeeds, lists are empty. It routes on who answers.
//! let mut drain = |ex: &mut Executor, answers: &mut Vec<Input>, log: &mut Vec<String>| {
//!     while let Some(Command { id, kind }) = ex.poll_command() {
//!         let call = match kind {
//!             CommandKind::Api(call) => call,
//!             CommandKind::Db(_) => continue, // no DB question in this example
//!             CommandKind::Notice(notice) => {
//!                 log.push(name(format!("{notice:?}"))); // WatchPods, Report: no answer
//!                 continue;
//!             }
//!         };
//!         log.push(name(format!("{call:?}")));
//!         let outcome = match call {
//!             ApiCall::ListPods { .. } => ApiOutcome::Listed { pods: vec![], resource_version: "1".into() },
//!             _ => ApiOutcome::Ok,
//!         };
//!         answers.push(Input::ApiResult { id, outcome });
//!     }
//! };
//!
//! drain(&mut ex, &mut answers, &mut log); // new() lists this scheduler's pods first
//! let key = TaskKey::new("etl", "extract", "manual__2026-11-23", 1);
//! ex.handle_input(now, Input::Submit { key: key.clone(), template: PodTemplate::default() })?;
//! drain(&mut ex, &mut answers, &mut log);
//! for answer in std::mem::take(&mut answers) {
//!     ex.handle_input(now, answer)?;
//!     drain(&mut ex, &mut answers, &mut log);
//! }
//! if let Some(deadline) = ex.poll_timeout() {
//!     now = now.max(deadline);
//!     ex.handle_timeout(now);
//!     drain(&mut ex, &mut answers, &mut log);
//! }
//! assert_eq!(log, ["ListPods", "CreatePod", "WatchPods"]);
//! assert!(ex.is_tracking(&key)); // until the watch reports the pod's end
//! assert!(ex.health(now).is_healthy());
//! # Ok(())
//! # }
//! ```
//!
//! ## Modules
//!
//! | module | decides |
//! |---|---|
//! | [`watch`] | what one pod event means (Airflow's classification table) |
//! | [`launch`] | which tries get a pod now, the pod's identity, create-error handling |
//! | `completion` (internal) | delete or mark done, then report; bounded clean-up retries |
//! | [`adoption`], [`liveness`] | which peers are dead, whose pods to take over |
//! | [`requeue`] | which pod failures are infrastructure's, requeued without a user retry |
//! | `zombie` (internal) | which pod-operator pods outlived their task |
//! | [`policy`] | rules of your own that narrow the requeue and adoption decisions |
//! | [`label`], [`selector`], [`key`] | identity on pods: label-safe values, the labels and annotations a template may not use, selectors, task keys |
//! | [`k8s_json`] | reading Kubernetes' own JSON (pods, watch lines) |
//! | [`health`] | the executor's own progress-based health |
//!
//! ## Stability
//!
//! Pre-1.0, but reviewed with semver in mind (`docs/api-review.md`): error enums, causes and
//! [`Input`] are `#[non_exhaustive]` (new variants are not breaking); the types a rule of yours
//! is handed have constructors and are `#[non_exhaustive]` too; [`Config`] and the wire types
//! (commands, pod views) are plain data, to be built with `..Default::default()` where they
//! have a default. [`CommandKind`] is deliberately exhaustive: a host must handle every
//! command, so a new one is a breaking change a compiler should point out.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod adoption;
mod budget;
mod clock;
pub mod command;
mod completion;
pub mod config;
pub mod db;
mod executor;
pub mod health;
pub mod input;
#[cfg(feature = "k8s-openapi")]
pub mod k8s;
pub mod k8s_json;
pub mod key;
pub mod label;
pub mod launch;
pub mod liveness;
pub mod pod;
pub mod policy;
pub mod reason;
pub mod requeue;
pub mod selector;
pub mod time;
pub mod watch;
mod zombie;

pub use command::{
    ApiCall, ApiFailure, ApiOutcome, Command, CommandId, CommandKind, DbQuery, Notice, PodManifest,
    Precondition, ReportedState, RequeueCause,
};
pub use config::{Config, ConfigError};
pub use db::{DbOutcome, TaskState};
pub use executor::{Executor, StateSize};
pub use health::{Health, UnhealthyReasons};
pub use input::{Input, InputError, OrphanTask, PodTemplate, TemplateField};
pub use key::{KeyError, TaskKey};
pub use liveness::{HeartbeatRecord, HeartbeatsUnavailable, JobState};
pub use pod::{
    ContainerState, ContainerStatus, EventType, PodCondition, PodPhase, PodRef, PodView, WatchEvent,
};
pub use selector::{FieldSelector, LabelSelector};
pub use time::Timestamp;
