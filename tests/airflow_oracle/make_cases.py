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

# The publish error matrix: one try per case, an error on its first create (or on every one),
# with no retries and with one, then three loops; and batches of three tries.
ERRORS = {
    "400": (400, "BadRequest", "bad request", None),
    "403": (403, "Forbidden", "pods is forbidden: not allowed", None),
    "403-quota": (403, "Forbidden", "pods \"x\" is forbidden: exceeded quota: compute", None),
    "404": (404, "NotFound", "namespaces \"default\" not found", None),
    "409-modified": (409, "Conflict", "the object has been modified; please apply your changes", None),
    "409-exists": (409, "AlreadyExists", "pods \"x\" already exists", None),
    "410": (410, "Gone", "too old resource version: 1 (2)", None),
    "422": (422, "Invalid", "Pod \"x\" is invalid", None),
    "429": (429, "TooManyRequests", "slow down", "0"),
    "429-no-header": (429, "TooManyRequests", "slow down", None),
    "500": (500, "InternalError", "etcd timeout", None),
    "502": (502, "BadGateway", "bad gateway", None),
    "503": (503, "ServiceUnavailable", "apiserver is shutting down", "0"),
    "504": (504, "GatewayTimeout", "gateway timeout", None),
}


def api_error(name, times):
    status, reason, message, retry_after = ERRORS[name]
    e = {"verb": "create", "status": status, "reason": reason, "message": message, "times": times}
    if retry_after is not None:
        e["headers"] = {"Retry-After": retry_after}
    return e


def tries(n):
    return [{"dag_id": "etl", "task_id": f"t{i}", "run_id": "r"} for i in range(n)]


for name in ERRORS:
    for max_retries in [0, 1]:
        cases.append({"id": f"publish-{name}-mr{max_retries}", "kind": "publish",
                      "config": {"task_publish_max_retries": max_retries},
                      "tasks": tries(1), "loops": 3, "api_errors": [api_error(name, 1)]})
for name in ["429", "500", "503", "400"]:
    cases.append({"id": f"publish-{name}-batch3", "kind": "publish",
                  "config": {"task_publish_max_retries": 1, "worker_pods_creation_batch_size": 3},
                  "tasks": tries(3), "loops": 3, "api_errors": [api_error(name, 1)]})
for name in ["429", "500", "403-quota"]:
    cases.append({"id": f"publish-{name}-always-mr1", "kind": "publish",
                  "config": {"task_publish_max_retries": 1, "worker_pods_creation_batch_size": 2},
                  "tasks": tries(2), "loops": 4, "api_errors": [api_error(name, -1)]})
cases.append({"id": "publish-ok-batch1", "kind": "publish", "config": {},
              "tasks": tries(3), "loops": 4, "api_errors": []})

# Completed-pod adoption by scheduler 1, with 1 to 5 other schedulers in every state around the
# liveness threshold (30 s): each owns one Succeeded pod (and one Running pod, never adopted);
# plus a pod whose owner no heartbeat row names, one without an owner label, one labelled done.
JOB_KINDS = [("running", 1), ("running", 29), ("running", 31), ("running", 600), ("failed", 1),
             ("success", 1), ("failed", 600)]


def owned(name, owner, phase="Succeeded", labels=None):
    p = {"name": name, "phase": phase,
         "task": {"dag_id": "etl", "task_id": name, "run_id": "r", "try_number": 1,
                  "scheduler_job_id": owner}}
    if labels is not None:
        p["labels"] = labels
    return p


n = 0
for others in range(1, 6):
    for start in range(len(JOB_KINDS)):
        jobs = [{"id": 1, "state": "running", "heartbeat_age_s": 1}]
        cluster = []
        for j in range(others):
            state, age = JOB_KINDS[(start + j) % len(JOB_KINDS)]
            job_id = 2 + j * 5  # 2, 7, 12, 17, 22: ids that sort differently as text
            jobs.append({"id": job_id, "state": state, "heartbeat_age_s": age})
            cluster.append(owned(f"done-{job_id}", str(job_id)))
            cluster.append(owned(f"running-{job_id}", str(job_id), "Running"))
        if start % 2 == 0:
            cluster.append(owned("done-unknown-owner", "99"))
            cluster.append(owned("done-own", "1"))
        if start % 3 == 0:
            cluster.append(owned("done-no-owner", "2", labels={"airflow-worker": None}))
            cluster.append(owned("done-marked", "2", labels={"airflow_executor_done": "True"}))
        n += 1
        cases.append({"id": f"adopt-{others}-others-{start}", "kind": "adopt_completed",
                      "scheduler_job_id": "1", "db": {"jobs": jobs}, "cluster": cluster})

# Revoke (the executor side of task_queued_timeout) of a queued try this executor does not
# track (a restart): which pods are labelled revoked and deleted.
def ti_pod(name, task_id="extract", try_number=1, owner="1", phase="Pending", dag_id="etl",
           map_index=-1):
    task = {"dag_id": dag_id, "task_id": task_id, "run_id": "r", "try_number": try_number,
            "scheduler_job_id": owner}
    if map_index >= 0:
        task["map_index"] = map_index
    return {"name": name, "phase": phase, "task": task}


def revoke(case_id, cluster, dag_id="etl", map_index=-1):
    ti = {"dag_id": dag_id, "task_id": "extract", "run_id": "r", "map_index": map_index,
          "try_number": 1, "state": "queued", "queued_by_job_id": 1}
    cases.append({"id": case_id, "kind": "revoke", "scheduler_job_id": "1",
                  "db": {"tis": [ti]}, "cluster": cluster})


revoke("revoke-pending", [ti_pod("p")])
revoke("revoke-running", [ti_pod("p", phase="Running")])
revoke("revoke-succeeded", [ti_pod("p", phase="Succeeded")])
revoke("revoke-failed", [ti_pod("p", phase="Failed")])
revoke("revoke-other-try", [ti_pod("p", try_number=2)])
revoke("revoke-two-pods", [ti_pod("p1"), ti_pod("p2", phase="Running")])
revoke("revoke-other-owner", [ti_pod("p", owner="2")])
revoke("revoke-other-task", [ti_pod("p", task_id="load")])
revoke("revoke-no-pod", [])
revoke("revoke-mapped", [ti_pod("p3", map_index=3), ti_pod("p4", map_index=4)], map_index=3)
revoke("revoke-unmapped-beside-mapped", [ti_pod("p", map_index=-1), ti_pod("p0", map_index=0)])
revoke("revoke-sanitised-dag", [ti_pod("p", dag_id="A.Dag_with spaces")], dag_id="A.Dag_with spaces")
revoke("revoke-mixed", [ti_pod("mine"), ti_pod("theirs", owner="2"), ti_pod("other", task_id="load"),
                        ti_pod("retry", try_number=3, phase="Running")])

# Orphan hand-over (try_adopt_task_instances) to scheduler 1: which pods it relabels to itself,
# and which task instances it resets. Pods are never Succeeded here, so the completed-pod
# adoption Airflow runs in the same call adopts nothing.
def orphan_ti(task_id, by, state="queued", try_number=1, map_index=-1):
    return {"dag_id": "etl", "task_id": task_id, "run_id": "r", "map_index": map_index,
            "try_number": try_number, "state": state, "queued_by_job_id": by}


def adopt_launched(case_id, tis, cluster):
    jobs = [{"id": 1, "state": "running", "heartbeat_age_s": 1}]
    for owner in sorted({t["queued_by_job_id"] for t in tis if t["queued_by_job_id"]}):
        jobs.append({"id": owner, "state": "failed", "heartbeat_age_s": 600})
    cases.append({"id": case_id, "kind": "adopt_launched", "scheduler_job_id": "1",
                  "db": {"jobs": jobs, "tis": tis}, "cluster": cluster})


def orphan_pod(name, task_id, owner, phase="Running", try_number=1, labels=None, map_index=-1):
    p = ti_pod(name, task_id=task_id, owner=owner, phase=phase, try_number=try_number,
               map_index=map_index)
    if labels is not None:
        p["labels"] = labels
    return p


adopt_launched("orphans-one-owner",
               [orphan_ti("a", 2), orphan_ti("b", 2, "running"), orphan_ti("c", None)],
               [orphan_pod("pa", "a", "2"), orphan_pod("pd", "d", "2")])
adopt_launched("orphans-pending-pod", [orphan_ti("a", 2)], [orphan_pod("pa", "a", "2", "Pending")])
adopt_launched("orphans-failed-pod", [orphan_ti("a", 2, "running")],
               [orphan_pod("pa", "a", "2", "Failed")])
adopt_launched("orphans-two-owners", [orphan_ti("a", 2), orphan_ti("b", 3), orphan_ti("c", 3)],
               [orphan_pod("pa", "a", "2"), orphan_pod("pb", "b", "3")])
adopt_launched("orphans-three-owners-mapped",
               [orphan_ti("a", 2, map_index=0), orphan_ti("a", 2, map_index=1), orphan_ti("b", 7),
                orphan_ti("c", 12, "running")],
               [orphan_pod("pa0", "a", "2", map_index=0), orphan_pod("pb", "b", "7", "Pending"),
                orphan_pod("pc", "c", "12")])
adopt_launched("orphans-other-try", [orphan_ti("a", 2, try_number=2)],
               [orphan_pod("pa1", "a", "2", try_number=1)])
adopt_launched("orphans-pod-marked-done", [orphan_ti("a", 2)],
               [orphan_pod("pa", "a", "2", labels={"airflow_executor_done": "True"})])
adopt_launched("orphans-pod-already-ours", [orphan_ti("a", 2)], [orphan_pod("pa", "a", "1")])
adopt_launched("orphans-none-only", [orphan_ti("a", None), orphan_ti("b", None, "running")], [])
adopt_launched("orphans-no-pods", [orphan_ti("a", 2), orphan_ti("b", 5)], [])

# The completion table (`_change_state`): a try this executor launched, one event of its pod, the
# task instance's state in the DB (what the task runner wrote; a pre-start failure is requeued
# only while QUEUED): what is reported, what happens to the pod, whether the try is requeued;
# under Airflow's default clean-up, with failed pods deleted, and with pods labelled done.
COMPLETION_CONFIGS = {
    "defaults": {},
    "delete-failed": {"delete_worker_pods_on_failure": True},
    "keep-pods": {"delete_worker_pods": False},
}
COMPLETION_EVENTS = {
    "succeeded": ("MODIFIED", pod("Succeeded", containers=[terminated("Completed", 0)]), "success"),
    "failed-exit-1": ("MODIFIED", pod("Failed", containers=[terminated("Error", 1)]), "failed"),
    "failed-exit-1-queued": ("MODIFIED", pod("Failed", containers=[terminated("Error", 1)]), "queued"),
    "oom": ("MODIFIED", pod("Failed", containers=[terminated("OOMKilled", 137)]), "failed"),
    "evicted-queued": ("MODIFIED", pod("Failed", reason="Evicted"), "queued"),
    "evicted-running": ("MODIFIED", pod("Failed", reason="Evicted"), "running"),
    "start-error-queued": ("MODIFIED", pod("Failed", containers=[terminated("StartError", 128)]), "queued"),
    "image-pull-queued": ("MODIFIED", pod("Pending", containers=[waiting("ErrImagePull")]), "queued"),
    "deleted-running": ("DELETED", pod("Running", containers=[running()], deleting=True), "running"),
    "deleted-pending": ("DELETED", pod("Pending", deleting=True), "queued"),
    "relabelled-away": ("DELETED", pod("Running", containers=[running()]), "running"),
    "revoked-succeeded": ("MODIFIED", pod("Succeeded", containers=[terminated("Completed", 0)],
                                           labels={"airflow_pod_revoked": "True"}), "success"),
}
for config_name, config in COMPLETION_CONFIGS.items():
    for event_name, (event_type, the_pod, db_state) in COMPLETION_EVENTS.items():
        ti = dict(TASK, map_index=-1, state=db_state, queued_by_job_id=1)
        cases.append({"id": f"completion-{config_name}-{event_name}", "kind": "watch",
                      "scheduler_job_id": "1", "config": config,
                      "db": {"jobs": [{"id": 1, "state": "running", "heartbeat_age_s": 1}],
                             "tis": [ti]},
                      "executor": {"launched": [TASK]},
                      "events": [{"type": event_type, "pod": the_pod}]})

# Multi-namespace mode: lists in each listed namespace, or across all of them.
MULTI = {"multi_namespace_mode": True, "multi_namespace_mode_namespace_list": "default,etl"}
ALL = {"multi_namespace_mode": True}


def in_namespace(p, namespace):
    p = dict(p)
    p["namespace"] = namespace
    return p


for mode, config in [("listed", MULTI), ("all", ALL)]:
    jobs = [{"id": 1, "state": "running", "heartbeat_age_s": 1},
            {"id": 2, "state": "failed", "heartbeat_age_s": 600},
            {"id": 7, "state": "running", "heartbeat_age_s": 1}]
    cluster = [in_namespace(owned("done-2-default", "2"), "default"),
               in_namespace(owned("done-2-etl", "2"), "etl"),
               in_namespace(owned("done-2-ml", "2"), "ml"),
               in_namespace(owned("done-7-etl", "7"), "etl")]
    cases.append({"id": f"namespaces-{mode}-adopt-completed", "kind": "adopt_completed",
                  "scheduler_job_id": "1", "config": config, "db": {"jobs": jobs},
                  "cluster": cluster})
    tis = [orphan_ti("a", 2), orphan_ti("b", 2), orphan_ti("c", 2)]
    orphans = [in_namespace(orphan_pod("pa", "a", "2"), "default"),
               in_namespace(orphan_pod("pb", "b", "2", "Pending"), "etl"),
               in_namespace(orphan_pod("pc", "c", "2"), "ml")]
    cases.append({"id": f"namespaces-{mode}-adopt-launched", "kind": "adopt_launched",
                  "scheduler_job_id": "1", "config": config,
                  "db": {"jobs": [{"id": 1, "state": "running", "heartbeat_age_s": 1},
                                  {"id": 2, "state": "failed", "heartbeat_age_s": 600}],
                         "tis": tis},
                  "cluster": orphans})

for case in cases:
    print(json.dumps(case, ensure_ascii=False, sort_keys=True))
