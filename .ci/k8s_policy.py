#!/usr/bin/env python3
"""Roster's policy for rendered Kubernetes manifests: what the schema cannot say.

Every workload's containers run non-root on a read-only root filesystem, without privilege
escalation or capabilities, under the runtime's seccomp profile, with CPU and memory
requests and limits, from a tagged image; long-running ones (Deployments, StatefulSets)
have liveness and readiness probes, and Roster's own servers (Deployments) native gRPC
ones and a preStop pause. Every Deployment has a PodDisruptionBudget, a
HorizontalPodAutoscaler and a NetworkPolicy that select it, and no pod mounts a service
account token.

    k8s_policy.py RENDERED.yaml...   # exit 1 and one line per violation if any

`violations(resources)` is the check itself, for the self-test (k8s_policy_test.py).
"""

import sys

import yaml

WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicaSet", "Pod"}
LONG_RUNNING = {"Deployment", "StatefulSet", "DaemonSet"}


def pod_spec(resource):
    kind = resource["kind"]
    spec = resource.get("spec") or {}
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        return spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec") or {}
    return spec.get("template", {}).get("spec") or {}


def pod_labels(resource):
    if resource["kind"] == "Pod":
        return resource.get("metadata", {}).get("labels") or {}
    return resource.get("spec", {}).get("template", {}).get("metadata", {}).get("labels") or {}


def selects(selector, labels):
    """Whether a LabelSelector (matchLabels and matchExpressions) selects `labels`."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def name_of(resource):
    return f"{resource['kind']}/{resource.get('metadata', {}).get('name', '?')}"


def container_violations(where, kind, pod, container, is_init):
    found = []
    pod_context = pod.get("securityContext") or {}
    context = container.get("securityContext") or {}

    def effective(key):
        return context.get(key, pod_context.get(key))

    if effective("runAsNonRoot") is not True:
        found.append(f"{where}: runAsNonRoot is not true")
    if effective("runAsUser") == 0:
        found.append(f"{where}: runAsUser is 0 (root)")
    if context.get("readOnlyRootFilesystem") is not True:
        found.append(f"{where}: readOnlyRootFilesystem is not true")
    if context.get("allowPrivilegeEscalation") is not False:
        found.append(f"{where}: allowPrivilegeEscalation is not false")
    if context.get("privileged") is True:
        found.append(f"{where}: privileged")
    capabilities = context.get("capabilities") or {}
    if "ALL" not in (capabilities.get("drop") or []):
        found.append(f"{where}: capabilities do not drop ALL")
    if capabilities.get("add"):
        found.append(f"{where}: capabilities added: {capabilities['add']}")
    seccomp = (effective("seccompProfile") or {}).get("type")
    if seccomp not in ("RuntimeDefault", "Localhost"):
        found.append(f"{where}: seccompProfile is not RuntimeDefault")

    resources = container.get("resources") or {}
    for part in ("requests", "limits"):
        for quantity in ("cpu", "memory"):
            if not (resources.get(part) or {}).get(quantity):
                found.append(f"{where}: no {quantity} {part[:-1]}")

    image = container.get("image") or ""
    last = image.rsplit("/", 1)[-1]
    if "@" not in last and (":" not in last or last.endswith(":latest")):
        found.append(f"{where}: image {image!r} has no tag or digest other than latest")

    if kind in LONG_RUNNING and not is_init:
        for probe in ("livenessProbe", "readinessProbe"):
            if not container.get(probe):
                found.append(f"{where}: no {probe}")
    if kind == "Deployment" and not is_init:
        for probe in ("livenessProbe", "readinessProbe"):
            grpc = (container.get(probe) or {}).get("grpc")
            if container.get(probe) and not (grpc and grpc.get("port")):
                found.append(f"{where}: {probe} is not a native gRPC probe")
        if not (container.get("lifecycle") or {}).get("preStop"):
            found.append(f"{where}: no preStop pause before SIGTERM")
    return found


def violations(resources):
    """Every breach of the policy in `resources` (parsed manifests), as sentences."""
    found = []
    resources = [r for r in resources if isinstance(r, dict) and r.get("kind")]
    for resource in resources:
        kind = resource["kind"]
        if kind not in WORKLOADS:
            continue
        pod = pod_spec(resource)
        if pod.get("automountServiceAccountToken") is not False:
            found.append(f"{name_of(resource)}: automountServiceAccountToken is not false")
        for host in ("hostNetwork", "hostPID", "hostIPC"):
            if pod.get(host):
                found.append(f"{name_of(resource)}: {host}")
        for field, is_init in (("initContainers", True), ("containers", False)):
            for container in pod.get(field) or []:
                where = f"{name_of(resource)} container {container.get('name', '?')}"
                found += container_violations(where, kind, pod, container, is_init)

    for deployment in (r for r in resources if r["kind"] == "Deployment"):
        name = deployment["metadata"]["name"]
        labels = pod_labels(deployment)
        namespace = deployment["metadata"].get("namespace")

        def same_namespace(other):
            return other["metadata"].get("namespace") == namespace

        if not any(
            r["kind"] == "PodDisruptionBudget"
            and same_namespace(r)
            and selects(r.get("spec", {}).get("selector"), labels)
            for r in resources
        ):
            found.append(f"Deployment/{name}: no PodDisruptionBudget selects its pods")
        if not any(
            r["kind"] == "HorizontalPodAutoscaler"
            and same_namespace(r)
            and r.get("spec", {}).get("scaleTargetRef", {}).get("kind") == "Deployment"
            and r.get("spec", {}).get("scaleTargetRef", {}).get("name") == name
            for r in resources
        ):
            found.append(f"Deployment/{name}: no HorizontalPodAutoscaler scales it")
        # A policy of its own, not merely the namespace's default deny (empty selector).
        if not any(
            r["kind"] == "NetworkPolicy"
            and same_namespace(r)
            and (r.get("spec", {}).get("podSelector") or {})
            and selects(r["spec"]["podSelector"], labels)
            and "Ingress" in (r["spec"].get("policyTypes") or ["Ingress"])
            for r in resources
        ):
            found.append(f"Deployment/{name}: no NetworkPolicy of its own selects its pods")
    return found


def load(paths):
    resources = []
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            resources += [doc for doc in yaml.safe_load_all(handle) if doc]
    return resources


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    found = violations(load(argv[1:]))
    for line in found:
        print(f"POLICY {line}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
