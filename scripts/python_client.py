"""The official Kubernetes Python client (`kubernetes` on PyPI, the client Airflow's executor
uses) against `podwarden-sim serve`, unmodified: list, create, patch, watch, evict-free delete.

    pip install kubernetes
    podwarden-sim serve sim/scenarios/serve-e2e.toml --listen 127.0.0.1:8001 --db /tmp/x.db &
    python3 scripts/python_client.py http://127.0.0.1:8001

Exits 0 when every call answered as Kubernetes does, 1 (with the reason) otherwise.
"""

import sys

from kubernetes import client, watch
from kubernetes.client.rest import ApiException

NAME = "python-client-check"
NAMESPACE = "default"


def main(server: str) -> int:
    config = client.Configuration()
    config.host = server
    api = client.CoreV1Api(client.ApiClient(config))

    listed = api.list_namespaced_pod(NAMESPACE)
    print(f"list: {len(listed.items)} pods at resourceVersion {listed.metadata.resource_version}")

    # The served cluster runs task pods: the executor's annotations name the task (one the
    # scenario's load does not have, so its process waits to be deleted).
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(
            name=NAME,
            labels={"airflow-worker": "python", "kubernetes_executor": "True"},
            annotations={
                "dag_id": "python_client",
                "task_id": "check",
                "run_id": "manual__1",
                "try_number": "1",
                "map_index": "-1",
            },
        ),
        spec=client.V1PodSpec(
            containers=[client.V1Container(name="base", image="airflow:3.3.2")],
            restart_policy="Never",
        ),
    )
    created = api.create_namespaced_pod(NAMESPACE, pod)
    print(f"create: {created.metadata.name} {created.status.phase} rv {created.metadata.resource_version}")
    try:
        api.create_namespaced_pod(NAMESPACE, pod)
        print("error: a second create of the same name was accepted")
        return 1
    except ApiException as e:
        print(f"create again: {e.status} {e.reason}")
        if e.status != 409:
            return 1

    patched = api.patch_namespaced_pod(NAME, NAMESPACE, {"metadata": {"labels": {"checked": "yes"}}})
    print(f"patch: labels {patched.metadata.labels}")
    if patched.metadata.labels.get("checked") != "yes":
        return 1

    seen = []
    stream = watch.Watch()
    for event in stream.stream(
        api.list_namespaced_pod,
        NAMESPACE,
        label_selector="airflow-worker=python",
        resource_version=created.metadata.resource_version,
        timeout_seconds=30,
    ):
        obj = event["object"]
        seen.append(event["type"])
        print(f"watch: {event['type']} {obj.metadata.name} {obj.status.phase}")
        if event["type"] == "MODIFIED" and obj.status.phase == "Running" and "deleted" not in seen:
            api.delete_namespaced_pod(NAME, NAMESPACE, grace_period_seconds=0)
            seen.append("deleted")
            print("delete: asked")
        if event["type"] == "DELETED":
            stream.stop()
    if "DELETED" not in seen:
        print(f"error: the watch never saw the pod deleted: {seen}")
        return 1
    try:
        api.read_namespaced_pod(NAME, NAMESPACE)
        print("error: the deleted pod is still there")
        return 1
    except ApiException as e:
        print(f"get after delete: {e.status} {e.reason}")
        return 0 if e.status == 404 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8001"))
