#!/usr/bin/env bash
# The seed's steps 1-4 (004: migration gate, ready gate, negative proof,
# fail-fast) for examples/fastapi-backend, as a careful engineer would script
# them with alembic, curl and timeout: every wait has a deadline, every
# check says what it saw, and every uvicorn it starts is stopped.
#
#   DATABASE_URL=postgres://user:pass@host:port/db REDIS_URL=redis://:pass@host:port \
#     benches/by-hand.sh
#
# Exit 0 when all four steps pass, 1 when one fails, 2 on a usage error. It
# is the yardstick of benches/side-by-side.sh; it checks what the seed asks,
# no more (gonogo also re-asks ready after 1 s in the negative proof, checks
# every captured output for credentials, records and masks evidence).
set -euo pipefail

: "${DATABASE_URL:?set DATABASE_URL (postgres://user:pass@host:port/db)}"
: "${REDIS_URL:?set REDIS_URL (redis://:pass@host:port)}"
cd "$(dirname "$0")/../examples/fastapi-backend"
[[ -x .venv/bin/uvicorn ]] || { echo "by-hand: run examples/fastapi-backend/setup first" >&2; exit 2; }

PORT=${PORT:-18001}
BASE="http://127.0.0.1:$PORT"
export ENV=staging CI_STRICT=1 READY_PROBE_TIMEOUT_S=1.5
# The app and alembic speak asyncpg.
export DATABASE_URL="postgresql+asyncpg://${DATABASE_URL#*://}"
export REDIS_URL
LOG=$(mktemp)
SERVICE_PID=
trap 'stop; rm -f "$LOG" "$LOG.body"' EXIT

fail() { echo "FAIL step $1: $2" >&2; exit 1; }
pass() { echo "PASS step $1: $2"; }

start() {
  .venv/bin/uvicorn server:app --host 127.0.0.1 --port "$PORT" >"$LOG" 2>&1 &
  SERVICE_PID=$!
}

stop() {
  [[ -n $SERVICE_PID ]] || return 0
  local deadline=$((SECONDS + 10))
  kill -TERM "$SERVICE_PID" 2>/dev/null || true
  while kill -0 "$SERVICE_PID" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.05; done
  kill -KILL "$SERVICE_PID" 2>/dev/null || true
  wait "$SERVICE_PID" 2>/dev/null || true
  SERVICE_PID=
}

# ask PATH: prints the HTTP status, the body in $LOG.body; 000 when nothing answered.
ask() {
  curl -sS -o "$LOG.body" -w '%{http_code}' --max-time 5 "$BASE$1" 2>/dev/null || true
}

# until_status PATH WANT SECONDS: poll every 100 ms until PATH answers WANT.
until_status() {
  local deadline=$((SECONDS + $3)) status
  while ((SECONDS < deadline)); do
    status=$(ask "$1")
    [[ $status == "$2" ]] && return 0
    kill -0 "$SERVICE_PID" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# Step 1: migrations apply, and alembic current shows head.
timeout 60 .venv/bin/alembic upgrade head >"$LOG" 2>&1 || fail 1 "alembic upgrade head: $(tail -n 3 "$LOG")"
current=$(timeout 60 .venv/bin/alembic current 2>&1) || fail 1 "alembic current: $current"
grep -q '(head)' <<<"$current" || fail 1 "alembic current does not show head: $current"
pass 1 "alembic upgrade head exit 0; current: $(grep '(head)' <<<"$current")"

# Step 2: started on the real servers, ready answers 200 with both connected.
start
until_status /api/ready 200 20 || fail 2 "ready never answered 200: $(cat "$LOG.body" 2>/dev/null)"
for field in '"database":"connected"' '"redis":"connected"' '"migrations":"head"'; do
  tr -d ' ' <"$LOG.body" | grep -q "$field" || fail 2 "ready body lacks $field: $(cat "$LOG.body")"
done
version=$(ask /api/version)
[[ $version == 200 ]] || fail 2 "version answered $version"
stop
pass 2 "ready 200, database and redis connected, migrations at head; version 200"

# Step 3: Redis pointed at a closed port: ready answers 503 naming Redis.
REDIS_URL="redis://:***@127.0.0.1:1/0" start
until_status /api/live 200 20 || fail 3 "the service never answered live with Redis broken"
status=$(ask /api/ready)
[[ $status == 503 ]] || fail 3 "ready answered $status, not 503"
grep -qi redis "$LOG.body" || fail 3 "the 503 body does not name Redis: $(cat "$LOG.body")"
stop
pass 3 "ready 503 naming Redis"

# Step 4: strict mode refuses to boot, without listening, for each broken setting.
failfast() {
  local name=$1 code=0
  shift
  env "$@" timeout 10 .venv/bin/uvicorn server:app --host 127.0.0.1 --port "$PORT" >"$LOG" 2>&1 || code=$?
  ((code != 0 && code != 124)) || fail 4 "$name: exit $code (124: still running after 10 s)"
  [[ $(ask /api/live) == 000 ]] || fail 4 "$name: something answers on port $PORT"
}
failfast "REDIS_URL unset" -u REDIS_URL
failfast "DATABASE_URL unset" -u DATABASE_URL
failfast "sqlite DATABASE_URL" DATABASE_URL=sqlite+aiosqlite:///by-hand-failfast.db
pass 4 "strict mode exits non-zero without listening (3 cases)"
