//! Airflow's KubernetesExecutor unit tests for the executor's *decisions* (`airflow-executor.md`
//! §10 cases 47–53: pre-execution requeue; 55–68: adoption and completed pods; 69–70: revoke),
//! ported to podwarden. Case 46 (`test_is_pre_execution_failure`) is a unit test in
//! `core/src/requeue.rs`.
//!
//! Each test names the Airflow test it follows and its §10 case number, and drives the public
//! API only: the commands the executor emits, `is_tracking` and `state_size`.
//!
//! Vocabulary: Airflow's `event_buffer[key] = (FAILED, …)` is a `Report { Failed }` command;
//! "k in `running`" is `is_tracking(k)`; Airflow's `_get_task_instance_state` is a
//! `QueryTaskStates` command answered with `Input::DbResult`; a requeue (`task_queue.put(job)`) is
//! a `Requeue` command followed by a `CreatePod` for the same try; the return value of
//! `try_adopt_task_instances` is the `OrphansResolved { adopted, reset }` command; Airflow's
//! `completed` map is the relabel-then-clean-up of completed-pod adoption.
mod support;

#[path = "airflow_ported_decisions/common.rs"]
mod common;

#[path = "airflow_ported_decisions/completed_pod_adoption.rs"]
mod completed_pod_adoption;
#[path = "airflow_ported_decisions/host_rules.rs"]
mod host_rules;
#[path = "airflow_ported_decisions/orphan_adoption.rs"]
mod orphan_adoption;
#[path = "airflow_ported_decisions/pre_execution_requeue.rs"]
mod pre_execution_requeue;
#[path = "airflow_ported_decisions/revoke.rs"]
mod revoke;
