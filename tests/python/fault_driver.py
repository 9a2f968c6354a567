"""The client side of `.ci/fault-test`: writes through the directory and the staff service
while the script kills processes, then checks the audit log against the outboxes.

Like check_directory.py it knows the API only through server reflection (grpcio, no
generated code). Subcommands:

  wait ADDRESS... [--timeout S]       until each address answers health SERVING
  service-account STAFF TOKEN WS      creates the relays' platform service account and
                                      prints `CLIENT_ID SECRET`
  write --directory A,B --staff S --token T --workspaces W1,W2 --out FILE --ready FILE
                                      writes until SIGTERM, then saves what each logical
                                      write became (acknowledged, refused, ambiguous)
  check --writes FILE --audit ADDR --token T --operator-token T
        --directory-db URL --staff-db URL --audit-db URL
                                      the assertions; exits non-zero on the first failure

A logical write keeps its `x-request-id` (and its AIP-155 request id, or its etag) across
retries, and the services record that id in each event, so the check can ask of every write
whether its events committed.
"""

import argparse
import json
import random
import signal
import subprocess
import sys
import threading
import time
import uuid

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

DIRECTORY = "roster.directory.v1.DirectoryService"
STAFF = "roster.staff.v1.StaffService"
AUDIT = "roster.audit.v1.AuditService"

# Codes after which a write may or may not have committed (the process died mid-call, the
# deadline passed, a replica not yet ready): the client retries them with the same ids.
RETRYABLE = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}
CALL_TIMEOUT = 5.0
# How long one logical write keeps retrying: longer than any restart in the script.
GIVE_UP_AFTER = 40.0


class Api:
    """Calls one service's methods by name with JSON-shaped dicts, on any of its replicas."""

    def __init__(self, service, addresses, token):
        self.service_name = service
        self.channels = [grpc.insecure_channel(address) for address in addresses]
        self.token = token
        pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(self.channels[0]))
        self.service = pool.FindServiceByName(service)
        self.methods = {}
        for method in self.service.methods:
            request_class = message_factory.GetMessageClass(method.input_type)
            response_class = message_factory.GetMessageClass(method.output_type)
            self.methods[method.name] = (request_class, response_class)

    def once(self, method_name, request, request_id, replica=0):
        request_class, response_class = self.methods[method_name]
        rpc = self.channels[replica % len(self.channels)].unary_unary(
            f"/{self.service_name}/{method_name}",
            request_serializer=request_class.SerializeToString,
            response_deserializer=response_class.FromString,
        )
        message = json_format.ParseDict(request, request_class())
        metadata = [("authorization", f"Bearer {self.token}"), ("x-request-id", request_id)]
        response = rpc(message, metadata=metadata, timeout=CALL_TIMEOUT)
        return json_format.MessageToDict(response, preserving_proto_field_name=True)


class Outcome:
    def __init__(self, response=None, code=None, attempts=0, outcome="ambiguous", detail=""):
        self.response = response
        self.code = code
        self.attempts = attempts
        self.outcome = outcome
        self.detail = detail


def call(api, method_name, request, request_id, stop_retrying):
    """One logical write: retried with the same ids on codes that leave it unknown, moving
    to the next replica each time. `acknowledged` on OK; `refused` when the first attempt
    got a definite error (nothing committed); `ambiguous` otherwise."""
    started = time.monotonic()
    attempts = 0
    replica = random.randrange(len(api.channels))
    while True:
        attempts += 1
        try:
            response = api.once(method_name, request, request_id, replica)
            return Outcome(response, "OK", attempts, "acknowledged")
        except grpc.RpcError as error:
            code = error.code()
            if code not in RETRYABLE:
                outcome = "refused" if attempts == 1 else "ambiguous"
                return Outcome(None, code.name, attempts, outcome, error.details() or "")
            if time.monotonic() - started > GIVE_UP_AFTER or (stop_retrying() and attempts > 3):
                return Outcome(None, code.name, attempts, "ambiguous", error.details() or "")
            replica += 1
            time.sleep(0.1 + random.random() * 0.2)


def read(api, method_name, request, stop_retrying):
    """A read, retried until it answers; None when it cannot."""
    outcome = call(api, method_name, request, f"read-{uuid.uuid4()}", stop_retrying)
    return outcome.response


class Ledger:
    """Every logical write and what became of it."""

    def __init__(self):
        self.lock = threading.Lock()
        self.writes = []

    def record(self, service, method, request_id, outcome, **extra):
        entry = {
            "service": service,
            "method": method,
            "request_id": request_id,
            "outcome": outcome.outcome,
            "code": outcome.code,
            "attempts": outcome.attempts,
        }
        entry.update(extra)
        with self.lock:
            self.writes.append(entry)
        return entry

    def counts(self):
        with self.lock:
            done = {}
            for entry in self.writes:
                done[entry["outcome"]] = done.get(entry["outcome"], 0) + 1
            return len(self.writes), done


def new_request_id():
    return f"fault-{uuid.uuid4()}"


class Writer:
    def __init__(self, directory, staff, ledger, stopping):
        self.directory = directory
        self.staff = staff
        self.ledger = ledger
        self.stopping = stopping

    def write(self, api, service, method, request, **extra):
        request_id = new_request_id()
        outcome = call(api, method, request, request_id, self.stopping.is_set)
        entry = self.ledger.record(service, method, request_id, outcome, **extra)
        return outcome, entry

    def pace(self):
        time.sleep(0.01 + random.random() * 0.02)

    def directory_loop(self, workspace, seed):
        rng = random.Random(seed)
        users = []
        while not self.stopping.is_set():
            if len(users) < 5 or rng.random() < 0.35:
                email = f"u-{uuid.uuid4().hex[:12]}@example.com"
                outcome, _ = self.write(
                    self.directory,
                    "directory",
                    "CreateUser",
                    {
                        "workspace_id": workspace,
                        "user": {"email": email, "name": "Fault Tester"},
                        "request_id": str(uuid.uuid4()),
                    },
                )
                if outcome.response:
                    users.append(outcome.response)
            else:
                user = rng.choice(users)
                choice = rng.random()
                if choice < 0.5:
                    method = "UpdateUser"
                    request = {
                        "workspace_id": workspace,
                        "user": {
                            "user_id": user["user_id"],
                            "name": f"Name {uuid.uuid4().hex[:8]}",
                            "etag": user["etag"],
                        },
                        "update_mask": "name",
                    }
                else:
                    active = user.get("status") != "USER_STATUS_DEACTIVATED"
                    method = "DeactivateUser" if active else "ReactivateUser"
                    request = {"workspace_id": workspace, "user_id": user["user_id"], "etag": user["etag"]}
                outcome, _ = self.write(self.directory, "directory", method, request)
                if outcome.response:
                    users[users.index(user)] = outcome.response
                else:
                    # A lost answer or a stale etag: read the user as it is now.
                    fresh = read(
                        self.directory,
                        "GetUser",
                        {"workspace_id": workspace, "user_id": user["user_id"]},
                        self.stopping.is_set,
                    )
                    if fresh:
                        users[users.index(user)] = fresh
            self.pace()

    def staff_loop(self, workspace, seed):
        rng = random.Random(seed)
        agents = []
        teams = []
        while not self.stopping.is_set():
            roll = rng.random()
            if len(agents) < 5 or roll < 0.35:
                email = f"a-{uuid.uuid4().hex[:12]}@example.com"
                outcome, _ = self.write(
                    self.staff,
                    "staff",
                    "InviteAgent",
                    {"workspace_id": workspace, "email": email, "name": "Fault Agent", "role": "agent",
                     "request_id": str(uuid.uuid4())},
                )
                if outcome.response:
                    agents.append(outcome.response["agent"])
            elif roll < 0.45:
                outcome, _ = self.write(
                    self.staff,
                    "staff",
                    "CreateTeam",
                    {"workspace_id": workspace, "team": {"name": f"team-{uuid.uuid4().hex[:10]}"}},
                )
                if outcome.response:
                    teams.append(outcome.response)
            elif roll < 0.55 and teams:
                team = rng.choice(teams)
                members = rng.sample(agents, min(3, len(agents)))
                # Only agents not in the team yet, so an acknowledged call changed something.
                fresh = [a["agent_id"] for a in members if team["team_id"] not in a.get("team_ids", [])]
                if fresh:
                    outcome, entry = self.write(
                        self.staff,
                        "staff",
                        "AddTeamMembers",
                        {"workspace_id": workspace, "team_id": team["team_id"], "agent_ids": fresh},
                    )
                    if outcome.response is not None and not outcome.response.get("changed_agent_ids"):
                        # Already members (an earlier answer was lost): nothing to record.
                        with self.ledger.lock:
                            entry["no_change"] = True
                    for agent in members:
                        refreshed = read(self.staff, "GetAgent",
                                         {"workspace_id": workspace, "agent_id": agent["agent_id"]},
                                         self.stopping.is_set)
                        if refreshed:
                            agents[agents.index(agent)] = refreshed
            else:
                agent = rng.choice(agents)
                if roll < 0.8:
                    method = "UpdateAgent"
                    role = "viewer" if agent.get("role") == "agent" else "agent"
                    request = {
                        "workspace_id": workspace,
                        "agent": {"agent_id": agent["agent_id"], "role": role, "etag": agent["etag"]},
                        "update_mask": "role",
                    }
                else:
                    active = agent.get("status") != "AGENT_STATUS_DEACTIVATED"
                    method = "DeactivateAgent" if active else "ReactivateAgent"
                    request = {"workspace_id": workspace, "agent_id": agent["agent_id"], "etag": agent["etag"]}
                    if active:
                        request["reason"] = "fault test"
                outcome, _ = self.write(self.staff, "staff", method, request)
                if outcome.response:
                    agents[agents.index(agent)] = outcome.response
                else:
                    fresh = read(self.staff, "GetAgent", {"workspace_id": workspace, "agent_id": agent["agent_id"]},
                                 self.stopping.is_set)
                    if fresh:
                        agents[agents.index(agent)] = fresh
            self.pace()

    def rollback_loop(self, workspace, probes):
        """Changes that fail after writing inside their transaction, so they roll back:
        a staff bulk change, all or nothing, whose last item names no agent (the first
        item's role change and its event are written, then undone), and a directory
        CreateUser whose one statement (user, request id, outbox event) hits the unique
        e-mail index."""
        agent_id, email = probes
        turn = 0
        while not self.stopping.is_set():
            turn += 1
            if turn % 2:
                request = {
                    "workspace_id": workspace,
                    "agent_ids": [agent_id, str(uuid.uuid4())],
                    "set_role": "viewer",
                    "all_or_nothing": True,
                }
                outcome, entry = self.write(self.staff, "staff", "BulkUpdateAgents", request, rollback=True)
                if outcome.response is not None:
                    answer = outcome.response
                    with self.ledger.lock:
                        entry["rolled_back"] = (not answer.get("committed", False) and answer.get("failed", 0) == 1
                                                and answer.get("succeeded", 0) == 1)
                        entry["answer"] = {k: answer.get(k) for k in ("committed", "succeeded", "failed")}
            else:
                self.write(
                    self.directory,
                    "directory",
                    "CreateUser",
                    {"workspace_id": workspace, "user": {"email": email, "name": "Duplicate"},
                     "request_id": str(uuid.uuid4())},
                    rollback=True,
                )
            time.sleep(0.5 + random.random() * 0.5)


def wait_command(args):
    deadline = time.monotonic() + args.timeout
    for address in args.addresses:
        channel = grpc.insecure_channel(address)
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                answer = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    break
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{address} is not SERVING after {args.timeout}s")
            time.sleep(0.1)
        channel.close()


def service_account_command(args):
    staff = Api(STAFF, [args.staff], args.token)
    created = staff.once(
        "CreateServiceAccount",
        {
            "workspace_id": args.workspace,
            "name": "audit-relay",
            "description": "the directory relays' tokens for the audit service, and ExportUser's reads",
            "workspaces": ["*"],
            "permissions": ["audit_log.append", "audit_log.erase", "audit_log.view"],
        },
        new_request_id(),
    )
    print(created["service_account"]["client_id"], created["client_secret"])


def write_command(args):
    workspaces = args.workspaces.split(",")
    directory = Api(DIRECTORY, args.directory.split(","), args.token)
    staff = Api(STAFF, [args.staff], args.token)
    ledger = Ledger()
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    writer = Writer(directory, staff, ledger, stopping)

    # The rolled-back changes' subjects, made before any fault: an agent nobody else
    # touches, and a user whose e-mail the probe repeats.
    probes = {}
    never = lambda: False  # noqa: E731
    for workspace in workspaces:
        agent = call(staff, "InviteAgent",
                     {"workspace_id": workspace, "email": f"probe-{uuid.uuid4().hex[:8]}@example.com", "role": "agent",
                      "request_id": str(uuid.uuid4())}, new_request_id(), never)
        email = f"probe-{uuid.uuid4().hex[:8]}@example.com"
        user = call(directory, "CreateUser",
                    {"workspace_id": workspace, "user": {"email": email}, "request_id": str(uuid.uuid4())},
                    new_request_id(), never)
        if agent.response is None or user.response is None:
            raise SystemExit(f"setting up the probes failed: {agent.code} {agent.detail} / {user.code} {user.detail}")
        probes[workspace] = (agent.response["agent"]["agent_id"], email)

    threads = []
    for index, workspace in enumerate(workspaces):
        for copy in range(args.directory_threads):
            threads.append(threading.Thread(target=writer.directory_loop, args=(workspace, index * 100 + copy)))
        for copy in range(args.staff_threads):
            threads.append(threading.Thread(target=writer.staff_loop, args=(workspace, index * 100 + 50 + copy)))
        threads.append(threading.Thread(target=writer.rollback_loop, args=(workspace, probes[workspace])))
    for thread in threads:
        thread.start()
    with open(args.ready, "w") as ready:
        ready.write("ready\n")
    last = time.monotonic()
    while any(thread.is_alive() for thread in threads):
        time.sleep(0.2)
        if time.monotonic() - last >= 10:
            last = time.monotonic()
            total, by_outcome = ledger.counts()
            print(f"writer: {total} writes so far {by_outcome}", flush=True)
    with open(args.out, "w") as out:
        json.dump({"probes": probes, "writes": ledger.writes}, out)
    total, by_outcome = ledger.counts()
    print(f"writer: stopped after {total} writes {by_outcome}", flush=True)


def psql(url, sql):
    result = subprocess.run(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-F", "\t", url, "-c", sql],
                            check=True, capture_output=True, text=True)
    return [line.split("\t") for line in result.stdout.splitlines() if line]


class Check:
    def __init__(self):
        self.failures = []

    def expect(self, condition, what):
        print(f"{'ok' if condition else 'FAILED'}: {what}", flush=True)
        if not condition:
            self.failures.append(what)


def check_command(args):
    check = Check()
    with open(args.writes) as source:
        ledger = json.load(source)
    writes = ledger["writes"]

    producers = {"directory": args.directory_db, "staff": args.staff_db}
    committed = {}
    request_ids = {}
    reclaimed = {}
    delivered = {}
    for name, url in producers.items():
        rows = psql(url, "SELECT workspace_id, event_id, request_id, action, "
                         "(delivered_at IS NULL)::int, (dead_at IS NOT NULL)::int, attempts, "
                         "coalesce(delivered_at, 0) FROM outbox_events")
        committed[name] = {(ws, event) for ws, event, *_ in rows}
        request_ids[name] = {}
        for ws, event, request_id, action, _pending, _dead, _attempts, delivered_at in rows:
            request_ids[name].setdefault(request_id, []).append(action)
            delivered[(ws, event)] = int(delivered_at)
        # Rows claimed more than once: their first claim ended in a failure or a lease
        # that ran out (a killed relay), so they were sent again or for the first time later.
        reclaimed[name] = sum(1 for row in rows if int(row[6]) > 1)
        pending = sum(1 for row in rows if row[4] == "1" and row[5] == "0")
        dead = sum(1 for row in rows if row[5] == "1")
        check.expect(pending == 0, f"{name}: no outbox row left undelivered ({pending})")
        check.expect(dead == 0, f"{name}: no dead letter ({dead})")
        check.expect(len(committed[name]) == len(rows), f"{name}: outbox event ids are distinct")

    audit_rows = psql(args.audit_db, "SELECT workspace_id, event_id, count(*), min(recorded_at) "
                                     "FROM audit_events GROUP BY 1, 2")
    logged = {(ws, event) for ws, event, *_ in audit_rows}
    repeated = [row for row in audit_rows if int(row[2]) != 1]
    # An event marked delivered long after the audit service recorded it lost its first
    # acknowledgement (its relay killed or frozen, or the audit service killed before
    # answering) and was sent again, or marked by its relay once thawed. The script's
    # freezes make such resends certain; the audit service must have recognised them.
    late = sorted((delivered.get((ws, event), 0) - int(recorded)) / 1e6 for ws, event, _, recorded in audit_rows)
    resent = [gap for gap in late if gap > 0.5]
    check.expect(any(gap >= 1 for gap in late),
                 f"the faults cost acknowledgements: {len(resent)} events marked delivered over 0.5s after the "
                 f"audit service recorded them (at most {late[-1] if late else 0:.1f}s), recorded once each")
    everything = committed["directory"] | committed["staff"]
    lost = everything - logged
    extra = logged - everything
    check.expect(not repeated, f"no event id twice in the audit log ({len(repeated)} repeated)")
    check.expect(not lost, f"none lost: every committed event is in the audit log ({len(lost)} missing"
                           + (f", e.g. {sorted(lost)[:3]}" if lost else "") + ")")
    check.expect(not extra, f"nothing else: every audit event was committed by a producer ({len(extra)} unknown)")
    check.expect(not (committed["directory"] & committed["staff"]), "the producers' event ids are disjoint")
    tree_sizes = {ws: int(size) for ws, size in psql(args.audit_db, "SELECT workspace_id, tree_size FROM audit_logs")}
    per_workspace = {}
    for ws, _ in logged:
        per_workspace[ws] = per_workspace.get(ws, 0) + 1
    check.expect(tree_sizes == per_workspace, f"each log's tree size is its number of events {per_workspace}")

    # Every workspace's log recomputes to its signed checkpoint.
    for workspace in sorted(per_workspace):
        token = args.operator_token if workspace == "*" else args.token
        audit = Api(AUDIT, [args.audit], token)
        answer = audit.once("VerifyLog", {"workspace_id": workspace}, new_request_id())
        check.expect(answer.get("verified") is True and int(answer.get("tree_size", 0)) == per_workspace[workspace],
                     f"VerifyLog '{workspace}': verified, {answer.get('events_checked', 0)} events checked"
                     + ("" if answer.get("verified") else f" {answer.get('problem')}"))

    # What the client saw against what committed.
    acknowledged = [w for w in writes
                    if w["outcome"] == "acknowledged" and not w.get("rollback") and not w.get("no_change")]
    missing = [w for w in acknowledged if w["request_id"] not in request_ids[w["service"]]]
    check.expect(not missing, f"every acknowledged write's events committed ({len(missing)} without"
                              + (f", e.g. {missing[:2]}" if missing else "") + ")")
    acked_by_method = {}
    for w in acknowledged:
        acked_by_method[(w["service"], w["method"])] = acked_by_method.get((w["service"], w["method"]), 0) + 1
    committed_by_method = {}
    for w in writes:
        actions = request_ids[w["service"]].get(w["request_id"], [])
        if actions:
            key = (w["service"], w["method"])
            committed_by_method[key] = committed_by_method.get(key, 0) + len(actions)
    for key in sorted(acked_by_method):
        events = committed_by_method.get(key, 0)
        check.expect(acked_by_method[key] <= events,
                     f"{key[0]} {key[1]}: {acked_by_method[key]} acknowledged <= {events} events committed")

    refused = [w for w in writes if w["outcome"] == "refused"]
    leaked = [w for w in refused if w["request_id"] in request_ids[w["service"]]]
    check.expect(not leaked, f"no refused write left an event ({len(refused)} refused, {len(leaked)} with events"
                             + (f", e.g. {leaked[:2]}" if leaked else "") + ")")
    audit_request_ids = {row[0] for row in psql(args.audit_db, "SELECT DISTINCT request_id FROM audit_events")}
    rollbacks = [w for w in writes if w.get("rollback")]
    bulk = [w for w in rollbacks if w["method"] == "BulkUpdateAgents" and w["outcome"] == "acknowledged"]
    duplicates = [w for w in rollbacks if w["method"] == "CreateUser" and w["outcome"] == "refused"]
    check.expect(bulk and all(w.get("rolled_back") for w in bulk),
                 f"{len(bulk)} all-or-nothing bulk changes answered committed: false with one item written")
    check.expect(duplicates and all(w["code"] == "ALREADY_EXISTS" for w in duplicates),
                 f"{len(duplicates)} duplicate CreateUser calls answered ALREADY_EXISTS")
    rolled_back_ids = {w["request_id"] for w in bulk + duplicates}
    in_outbox = rolled_back_ids & (set(request_ids["directory"]) | set(request_ids["staff"]))
    in_audit = rolled_back_ids & audit_request_ids
    check.expect(not in_outbox and not in_audit,
                 f"the {len(rolled_back_ids)} rolled-back changes have no event, in the outboxes ({len(in_outbox)}) "
                 f"or the audit log ({len(in_audit)})")
    for workspace, (agent_id, _email) in ledger["probes"].items():
        events = psql(args.audit_db, f"SELECT action FROM audit_events WHERE workspace_id = '{workspace}' "
                                     f"AND target_type = 'agent' AND target_id = '{agent_id}'")
        check.expect(sorted(a for (a,) in events) == ["agent.invited"],
                     f"{workspace}: the bulk changes' agent has its invitation's event only {events}")

    total = len(writes)
    by_outcome = {}
    for w in writes:
        by_outcome[w["outcome"]] = by_outcome.get(w["outcome"], 0) + 1
    summary = {
        "writes_attempted": total,
        "acknowledged": by_outcome.get("acknowledged", 0),
        "refused": by_outcome.get("refused", 0),
        "ambiguous": by_outcome.get("ambiguous", 0),
        "retried_writes": sum(1 for w in writes if w["attempts"] > 1),
        "events_committed": len(everything),
        "events_committed_directory": len(committed["directory"]),
        "events_committed_staff": len(committed["staff"]),
        "events_in_audit": len(logged),
        "outbox_rows_claimed_more_than_once": reclaimed,
        "marked_delivered_over_0.5s_after_recorded": len(resent),
        "longest_recorded_to_marked_s": round(late[-1], 1) if late else 0,
        "workspaces": per_workspace,
    }
    print("fault-test counts: " + json.dumps(summary), flush=True)
    if check.failures:
        raise SystemExit(f"fault test: {len(check.failures)} check(s) failed")


def main():
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    wait = commands.add_parser("wait")
    wait.add_argument("addresses", nargs="+")
    wait.add_argument("--timeout", type=float, default=30)
    account = commands.add_parser("service-account")
    account.add_argument("staff")
    account.add_argument("token")
    account.add_argument("workspace")
    write = commands.add_parser("write")
    write.add_argument("--directory", required=True)
    write.add_argument("--staff", required=True)
    write.add_argument("--token", required=True)
    write.add_argument("--workspaces", required=True)
    write.add_argument("--directory-threads", type=int, default=2)
    write.add_argument("--staff-threads", type=int, default=1)
    write.add_argument("--out", required=True)
    write.add_argument("--ready", required=True)
    check = commands.add_parser("check")
    check.add_argument("--writes", required=True)
    check.add_argument("--audit", required=True)
    check.add_argument("--token", required=True)
    check.add_argument("--operator-token", required=True)
    check.add_argument("--directory-db", required=True)
    check.add_argument("--staff-db", required=True)
    check.add_argument("--audit-db", required=True)
    args = parser.parse_args()
    {"wait": wait_command, "service-account": service_account_command, "write": write_command,
     "check": check_command}[args.command](args)


if __name__ == "__main__":
    main()
