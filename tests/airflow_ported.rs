//! Airflow's own KubernetesExecutor unit tests (`airflow-executor.md` §10), ported to podwarden.
//!
//! Each test names the Airflow test it follows and its §10 case number. They drive the public
//! API only: the commands the executor emits, `is_tracking`, `state_size` and `poll_timeout`.
//! Where podwarden differs from Airflow on purpose, the test says so and asserts podwarden's
//! behaviour.
//!
//! Vocabulary: Airflow's `event_buffer[key] = (FAILED, …)` is a `Report { Failed }` command;
//! "the task queue is empty" is "the key is no longer tracked and no launch timer is armed";
//! "requeued" is "still tracked, nothing reported, a later loop creates the pod again".
mod support;

#[path = "airflow_ported/common.rs"]
mod common;

#[path = "airflow_ported/change_state.rs"]
mod change_state;
#[path = "airflow_ported/completed_pods.rs"]
mod completed_pods;
#[path = "airflow_ported/create_errors.rs"]
mod create_errors;
#[path = "airflow_ported/naming.rs"]
mod naming;
#[path = "airflow_ported/pod_deletion.rs"]
mod pod_deletion;
#[path = "airflow_ported/watcher.rs"]
mod watcher;
