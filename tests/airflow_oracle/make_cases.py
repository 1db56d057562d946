#!/usr/bin/env python3
"""Writes the differential cases (`cases.jsonl`) that `tests/airflow_oracle.rs` compares with
Airflow's recorded answers (`answers.jsonl`). Standard library only; the project's build and
tests never run it. To record again (see docs/airflow-oracle.md):

    python3 tests/airflow_oracle/make_cases.py > tests/airflow_oracle/cases.jsonl
    ../shared/airflow-oracle/setup.sh "$VENV"
    "$VENV/bin/python" ../shared/airflow-oracle/oracle.py \
        < tests/airflow_oracle/cases.jsonl > tests/airflow_oracle/answers.jsonl
"""
import json

TASK = {"dag_id": "etl", "task_id": "extract", "run_id": "manual__2026-11-23", "try_number": 1}
DELETED_AT = "2026-11-23T00:10:00Z"


def pod(phase, *, containers=None, init=None, reason=None, message=None, deleting=False,
        labels=None):
    p = {"name": "etl-extract-a1b2c3d4", "task": TASK, "phase": phase}
    if containers is not None:
        p["container_statuses"] = containers
    if init is not None:
        p["init_container_statuses"] = init
    if reason is not None:
        p["reason"] = reason
    if message is not None:
        p["message"] = message
    if deleting:
        p["deletion_timestamp"] = DELETED_AT
    if labels is not None:
        p["labels"] = labels
    return p


def terminated(reason, exit_code, name="base"):
    return {"name": name, "state": "terminated", "reason": reason, "exit_code": exit_code}


def waiting(reason, name="base"):
    return {"name": name, "state": "waiting", "reason": reason}


def running(name="base"):
    return {"name": name, "state": "running"}


cases = []


def watch(case_id, event_type, the_pod):
    cases.append({"id": case_id, "kind": "watch", "scheduler_job_id": "1",
                  "events": [{"type": event_type, "pod": the_pod}]})


# Every phase, event type and deletion timestamp, with the containers a pod of that phase has.
typical = {
    "Pending": None,
    "Running": [running()],
    "Succeeded": [terminated("Completed", 0)],
    "Failed": [terminated("Error", 1)],
}
for phase, containers in typical.items():
    for event_type in ["ADDED", "MODIFIED", "DELETED"]:
        for deleting in [False, True]:
            watch(f"watch-{phase.lower()}-{event_type.lower()}-{'deleting' if deleting else 'live'}",
                  event_type, pod(phase, containers=containers, deleting=deleting))

# Pending pods waiting for a reason: fatal ones (Airflow's default list) and others.
for reason in ["ErrImagePull", "ImagePullBackOff", "CreateContainerConfigError",
               "CreateContainerError", "ImageInspectError", "InvalidImageName",
               "ContainerCreating", "CrashLoopBackOff", "PodInitializing"]:
    watch(f"watch-pending-waiting-{reason}", "MODIFIED", pod("Pending", containers=[waiting(reason)]))
watch("watch-pending-init-waiting-ErrImagePull", "MODIFIED",
      pod("Pending", init=[waiting("ErrImagePull", "init")], containers=[waiting("PodInitializing")]))

# Failed pods of every kind of cause.
failed = {
    "oom": pod("Failed", containers=[terminated("OOMKilled", 137)]),
    "sigterm": pod("Failed", containers=[terminated("Error", 143)]),
    "evicted": pod("Failed", reason="Evicted", message="The node was low on resource: memory."),
    "preempting": pod("Failed", reason="Preempting"),
    "provider-failed": pod("Failed", reason="ProviderFailed"),
    "outofcpu": pod("Failed", reason="OutOfcpu", message="Pod Node didn't have enough resource: cpu"),
    "init-failed": pod("Failed", init=[terminated("Error", 2, "init")], containers=[waiting("PodInitializing")]),
    "container-cannot-run": pod("Failed", containers=[terminated("ContainerCannotRun", 128)]),
    "start-error": pod("Failed", containers=[terminated("StartError", 128)]),
    "never-started": pod("Failed", containers=[waiting("ErrImagePull")]),
}
for name, the_pod in failed.items():
    for event_type, deleting in [("MODIFIED", False), ("DELETED", True)]:
        p = dict(the_pod)
        if deleting:
            p["deletion_timestamp"] = DELETED_AT
        watch(f"watch-failed-{name}-{event_type.lower()}", event_type, p)

# Running pods being deleted, and an unknown phase.
watch("watch-running-terminating-sigterm", "MODIFIED",
      pod("Running", containers=[terminated("Error", 143)], deleting=True))
watch("watch-unknown-phase", "MODIFIED", pod("Unknown"))
# Marked: done and revoked pods.
watch("watch-succeeded-revoked", "MODIFIED",
      pod("Succeeded", containers=[terminated("Completed", 0)], labels={"airflow_pod_revoked": "True"}))
watch("watch-failed-revoked", "MODIFIED",
      pod("Failed", containers=[terminated("Error", 1)], labels={"airflow_pod_revoked": "True"}))

# Label values: make_safe_label_value against podwarden's safe_value, one case each.
values = ["etl", "extract", "manual__2026-11-23", "scheduled__2026-11-23T00:00:00+00:00",
          "a" * 63, "a" * 64, "a" * 100, "Upper_Case.Dots-and_Underscores", "a b c", "-leading",
          "trailing-", "_under_", ".dot.", "x", "", "1", "mixed-日本語-text", "日本語",
          "!!!", "a--b", "dag.with.dots", "task/slash", "Ünïcödé", "tab\tin", "new\nline",
          "x" * 62 + "!", "0123456789" * 7, "a.b", "a..b", "a__b", "A", "Z9", "9Z", "-", "_",
          "--a--", "a-", "ab" * 32, "ab" * 31 + "!", "foo@bar", "with space ", "café",
          "emoji-🚀-task", "UPPER"]
for i, value in enumerate(values):
    cases.append({"id": f"safe-label-{i:02d}", "kind": "safe_label", "values": [value]})

# Labels of a try's pod.
for i, task in enumerate([
    {"dag_id": "etl", "task_id": "extract", "run_id": "manual__2026-11-23", "try_number": 1, "map_index": -1},
    {"dag_id": "etl", "task_id": "extract", "run_id": "manual__2026-11-23", "try_number": 3, "map_index": 7},
    {"dag_id": "A.Dag", "task_id": "group.task_1", "run_id": "scheduled__2026-11-23T00:00:00+00:00", "try_number": 1, "map_index": -1},
    {"dag_id": "d" * 80, "task_id": "t" * 80, "run_id": "r" * 80, "try_number": 12, "map_index": 0},
]):
    task = dict(task, scheduler_job_id="1")
    cases.append({"id": f"pod-labels-{i}", "kind": "safe_label", "values": [], "tasks": [task]})

for case in cases:
    print(json.dumps(case, ensure_ascii=False, sort_keys=True))
