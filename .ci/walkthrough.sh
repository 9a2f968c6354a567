#!/usr/bin/env bash
# Runs the README's walkthrough, as printed, against a freshly started `roster`, then the
# independent Python client. Fails on the first command that fails.
set -euo pipefail
cd "$(dirname "$0")/.."

workdir=$(mktemp -d)
server_log="$workdir/roster.log"
cleanup() {
  if [ -n "${server_pid:-}" ] && kill -0 "$server_pid" 2>/dev/null; then kill -TERM "$server_pid"; wait "$server_pid" || true; fi
  rm -rf "$workdir"
}
trap cleanup EXIT

# The walkthrough uses ./data; start from nothing so it shows what a new user sees.
rm -rf data
cargo build -q --release -p roster
cargo run -q --release > "$server_log" 2>&1 &
server_pid=$!

for _ in $(seq 1 100); do
  if grpcurl -plaintext -max-time 1 127.0.0.1:50051 grpc.health.v1.Health/Check 2>/dev/null | grep -q SERVING; then break; fi
  if ! kill -0 "$server_pid" 2>/dev/null; then cat "$server_log"; echo "roster exited early"; exit 1; fi
  sleep 0.2
done

# The shell block between the README's `<!-- NAME:start -->` and `<!-- NAME:end -->`.
readme_block() {
  sed -n "/<!-- $1:start -->/,/<!-- $1:end -->/p" README.md | sed '1,2d;$d' | sed '$d'
}
readme_block walkthrough > "$workdir/walkthrough.sh"
output=$(bash -euo pipefail "$workdir/walkthrough.sh")
echo "$output"
readme_block walkthrough-staff > "$workdir/staff.sh"
staff_output=$(bash -euo pipefail "$workdir/staff.sh")
echo "$staff_output"

# What the README promises a new user sees.
grep -q 'roster.directory.v1.DirectoryService' <<<"$output"
grep -q '"status": "SERVING"' <<<"$output"
grep -q 'created 10, updated 0' <<<"$output"
grep -q '"email": "captain.kirk@example.com"' <<<"$output"
grep -q '"status": "USER_STATUS_DEACTIVATED"' <<<"$output"
grep -q '"reason": "the end-user is deactivated"' <<<"$output"
# The invitee accepted without a token, is listed active, holds the one seat in use, signs
# in, and her token reads the directory's users.
[ "$(grep -c '"status": "AGENT_STATUS_ACTIVE"' <<<"$staff_output")" -eq 2 ]
grep -q '"seatsUsed": 1' <<<"$staff_output"
grep -q '"signInCount": "1"' <<<"$staff_output"
grep -q '"email": "captain.kirk@example.com"' <<<"$staff_output"
# Deactivated, the same token is refused at the directory.
grep -q '"status": "AGENT_STATUS_DEACTIVATED"' <<<"$staff_output"
grep -q 'Code: Unauthenticated' <<<"$staff_output"
grep -q 'token was revoked' <<<"$staff_output"
readme_block walkthrough-audit > "$workdir/audit.sh"
audit_output=$(bash -euo pipefail "$workdir/audit.sh")
echo "$audit_output"
# The directory's event reached the user's tab, the log verifies against its signed
# checkpoint, the export holds the person and their events, erasure redacts the event's
# values while the log still verifies (twice), and the producer's resend added nothing.
grep -q '"action": "end_user.deactivated"' <<<"$audit_output"
grep -q '"verifierKey": "roster.local/audit/demo+' <<<"$audit_output"
grep -q '"leafData"' <<<"$audit_output"
grep -q '"email": "spock@example.com"' <<<"$audit_output"
grep -q '"exportEventId"' <<<"$audit_output"
grep -q '"status": "USER_STATUS_ERASED"' <<<"$audit_output"
grep -q '"afterRedacted": true' <<<"$audit_output"
[ "$(grep -c '"verified": true' <<<"$audit_output")" -eq 2 ]
grep -q '"alreadyRecorded": true' <<<"$audit_output"

TOKEN=$(cargo run -q --release -- dev-token --workspace demo --role admin)
python3 tests/python/check_directory.py 127.0.0.1:50051 "$TOKEN" demo

# Graceful shutdown: SIGTERM, in-flight calls finish, exit status 0.
kill -TERM "$server_pid"
wait "$server_pid"
server_pid=
grep -q "shutdown" "$server_log" || { cat "$server_log"; echo "no shutdown log line"; exit 1; }
echo "walkthrough: 1 passed, 0 failed"
