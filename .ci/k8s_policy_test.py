#!/usr/bin/env python3
"""Shows that k8s_policy.py catches regressions: the rendered overlay passes, and each
mutation below (one thing a careless edit could do) is reported with its own message.

    k8s_policy_test.py RENDERED.yaml
"""

import copy
import sys

from k8s_policy import load, violations


def first(resources, kind, name=None):
    for resource in resources:
        if resource["kind"] == kind and (name is None or resource["metadata"]["name"] == name):
            return resource
    raise LookupError(f"the rendered overlay has no {kind} {name or ''}")


def server(resources):
    return first(resources, "Deployment", "directory")["spec"]["template"]["spec"]["containers"][0]


def job(resources):
    return first(resources, "Job", "directory-migrate")["spec"]["template"]["spec"]["containers"][0]


def drop(resources, kind, name):
    resources.remove(first(resources, kind, name))


def set_in(mapping, path, value):
    *parents, last = path
    for key in parents:
        mapping = mapping.setdefault(key, {})
    mapping[last] = value


def delete_in(mapping, path):
    *parents, last = path
    for key in parents:
        mapping = mapping[key]
    del mapping[last]


# (what a regression looks like, the change, a fragment of the message that must name it)
MUTATIONS = [
    ("a server without its readiness probe",
     lambda r: delete_in(server(r), ["readinessProbe"]),
     "Deployment/directory container directory: no readinessProbe"),
    ("a liveness probe that is not gRPC",
     lambda r: set_in(server(r), ["livenessProbe"], {"tcpSocket": {"port": 50051}}),
     "livenessProbe is not a native gRPC probe"),
    ("a writable root filesystem",
     lambda r: set_in(server(r), ["securityContext", "readOnlyRootFilesystem"], False),
     "container directory: readOnlyRootFilesystem is not true"),
    ("root, in a migration Job",
     lambda r: (set_in(job(r), ["securityContext", "runAsNonRoot"], False),
                set_in(job(r), ["securityContext", "runAsUser"], 0)),
     "Job/directory-migrate container migrate: runAsNonRoot is not true"),
    ("privilege escalation allowed",
     lambda r: set_in(server(r), ["securityContext", "allowPrivilegeEscalation"], True),
     "allowPrivilegeEscalation is not false"),
    ("a capability kept",
     lambda r: set_in(server(r), ["securityContext", "capabilities"], {"drop": ["ALL"], "add": ["NET_ADMIN"]}),
     "capabilities added"),
    ("no memory limit",
     lambda r: delete_in(server(r), ["resources", "limits", "memory"]),
     "container directory: no memory limit"),
    ("no CPU request on a Job",
     lambda r: delete_in(job(r), ["resources", "requests", "cpu"]),
     "Job/directory-migrate container migrate: no cpu request"),
    ("an untagged image",
     lambda r: set_in(server(r), ["image"], "roster-directory"),
     "has no tag or digest"),
    ("no preStop pause",
     lambda r: delete_in(server(r), ["lifecycle"]),
     "no preStop pause"),
    ("a service account token mounted",
     lambda r: set_in(first(r, "Deployment", "staff")["spec"]["template"]["spec"], ["automountServiceAccountToken"], True),
     "Deployment/staff: automountServiceAccountToken is not false"),
    ("a StatefulSet without probes",
     lambda r: delete_in(first(r, "StatefulSet")["spec"]["template"]["spec"]["containers"][0], ["livenessProbe"]),
     "StatefulSet/postgres container postgres: no livenessProbe"),
    ("the PodDisruptionBudget gone",
     lambda r: drop(r, "PodDisruptionBudget", "audit"),
     "Deployment/audit: no PodDisruptionBudget"),
    ("the HorizontalPodAutoscaler gone",
     lambda r: drop(r, "HorizontalPodAutoscaler", "staff"),
     "Deployment/staff: no HorizontalPodAutoscaler"),
    ("the service's NetworkPolicy gone (the namespace's default deny is not its own)",
     lambda r: drop(r, "NetworkPolicy", "audit"),
     "Deployment/audit: no NetworkPolicy of its own"),
    ("a PodDisruptionBudget that selects other pods",
     lambda r: set_in(first(r, "PodDisruptionBudget", "directory")["spec"], ["selector"],
                      {"matchLabels": {"app.kubernetes.io/name": "directory-old"}}),
     "Deployment/directory: no PodDisruptionBudget"),
]


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    rendered = load([argv[1]])
    passed = failed = 0

    baseline = violations(rendered)
    if baseline:
        print("FAIL the rendered overlay itself breaks the policy:", *baseline, sep="\n  ")
        failed += 1
    else:
        passed += 1

    for title, mutate, expected in MUTATIONS:
        resources = copy.deepcopy(rendered)
        mutate(resources)
        found = violations(resources)
        if any(expected in line for line in found):
            passed += 1
            print(f"ok   caught: {title}")
        else:
            failed += 1
            print(f"FAIL missed: {title} (wanted {expected!r}, got {found})")
    print(f"policy self-test: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
