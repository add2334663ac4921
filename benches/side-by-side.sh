#!/usr/bin/env bash
# gonogo beside the hand-written script (benches/by-hand.sh), on the same
# Postgres and Redis servers, alternately: for each round, the script, gonogo
# limited to the seed's steps 1-4, then gonogo's full proof. Prints every
# time and the median ratios against the script's median. Asserts nothing.
#
#   benches/side-by-side.sh [ROUNDS]        (default 5; release build)
#   BENCH_PROFILE=debug benches/side-by-side.sh 3   (the debug build)
#
# The servers come from one `gonogo run --keep` (its connection.env); every
# measured gonogo run uses them with --deps external, and `[migrations]
# external = true` so gonogo applies the migrations as the script does (and
# so without the read-only Postgres step, which needs servers gonogo owns).
# GONOGO_SERIAL=1 adds --serial to the measured runs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
SCENARIO=scenarios/fastapi-backend.toml
[[ -x examples/fastapi-backend/.venv/bin/uvicorn ]] || examples/fastapi-backend/setup
if [[ ${BENCH_PROFILE:-release} == debug ]]; then
  cargo build --quiet
  GONOGO=$PWD/target/debug/gonogo
else
  cargo build --release --quiet
  GONOGO=$PWD/target/release/gonogo
fi
# Beside scenarios/, so the shipped scenario's relative paths (../examples/…) hold.
WORK=$(mktemp -d "$PWD/.side-by-side.XXXXXX")
KEPT=

cleanup() {
  [[ -z $KEPT ]] || "$GONOGO" stop "$KEPT" >/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# Both measured scenarios, from the shipped one: migrations applied to the
# (kept, external) servers; steps-1-4 declares every later step not
# applicable, so it never runs them.
sed -e 's|^\[migrations\]$|[migrations]\nexternal = true|' "$SCENARIO" >"$WORK/full.toml"
# A server-wide fault never runs on servers gonogo reaches as external.
printf '\n[[not_applicable]]\nstep = "postgres-read-only"\nreason = "the benchmark reaches the kept servers as external"\n' >>"$WORK/full.toml"
cp "$WORK/full.toml" "$WORK/steps-1-4.toml"
for step in latency-slo graceful-shutdown metrics-gauge kubernetes-probes alert-rules \
  postgres-runtime-outage postgres-liveness-isolation postgres-timeout-discipline postgres-recovery \
  redis-runtime-outage redis-liveness-isolation redis-timeout-discipline redis-recovery; do
  printf '\n[[not_applicable]]\nstep = "%s"\nreason = "the benchmark compares the seed'"'"'s steps 1-4"\n' "$step" >>"$WORK/steps-1-4.toml"
done

# The same four steps with the negative proof asking ready once, as the
# script does (gonogo asks again after `[negative] observe`, 1 s by
# default, because a 503 that turns into a 200 is a failure).
sed -e 's|^\[negative\]$|[negative]\nobserve = "1ms"|' "$WORK/steps-1-4.toml" >"$WORK/steps-1-4-once.toml"

echo "servers: one gonogo run --keep (not measured)" >&2
"$GONOGO" run "$WORK/steps-1-4.toml" --quiet --keep --out "$WORK/evidence" >"$WORK/keep.log" 2>&1 || {
  cat "$WORK/keep.log" >&2
  exit 1
}
KEPT=$(grep -o 'in [^ ]*/connection.env' "$WORK/keep.log" | sed -e 's|^in ||' -e 's|/connection.env$||' | head -n 1)
[[ -n $KEPT ]] || { echo "no kept servers in:" >&2; cat "$WORK/keep.log" >&2; exit 1; }
set -a
# shellcheck disable=SC1091
source "$KEPT/connection.env"
set +a

# seconds CMD...: run CMD, print its wall time in seconds; fail loudly if it fails.
seconds() {
  local start end
  start=$(date +%s.%N)
  "$@" >"$WORK/last.log" 2>&1 || { echo "failed: $*" >&2; cat "$WORK/last.log" >&2; exit 1; }
  end=$(date +%s.%N)
  echo "$end - $start" | bc
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

: >"$WORK/script" && : >"$WORK/g4" && : >"$WORK/g4once" && : >"$WORK/gfull"
serial=()
[[ ${GONOGO_SERIAL:-} == 1 ]] && serial=(--serial)

printf '%-6s %10s %12s %14s %12s\n' round script gonogo-1-4 gonogo-1-4-once gonogo-full
for round in $(seq 1 "$ROUNDS"); do
  s=$(seconds benches/by-hand.sh)
  g4=$(seconds "$GONOGO" run "$WORK/steps-1-4.toml" --deps external --quiet "${serial[@]}" --out "$WORK/evidence")
  g4once=$(seconds "$GONOGO" run "$WORK/steps-1-4-once.toml" --deps external --quiet "${serial[@]}" --out "$WORK/evidence")
  gf=$(seconds "$GONOGO" run "$WORK/full.toml" --deps external --quiet "${serial[@]}" --out "$WORK/evidence")
  echo "$s" >>"$WORK/script" && echo "$g4" >>"$WORK/g4" && echo "$g4once" >>"$WORK/g4once" && echo "$gf" >>"$WORK/gfull"
  printf '%-6s %10.2f %12.2f %14.2f %12.2f\n' "$round" "$s" "$g4" "$g4once" "$gf"
done
ms=$(median <"$WORK/script")
m4=$(median <"$WORK/g4")
m4once=$(median <"$WORK/g4once")
mf=$(median <"$WORK/gfull")
printf '%-6s %10.2f %12.2f %14.2f %12.2f\n' median "$ms" "$m4" "$m4once" "$mf"
printf 'steps 1-4: gonogo / script = %.2f (target <= 1.0)\n' "$(echo "$m4 / $ms" | bc -l)"
printf 'steps 1-4, ready asked once after the 503 as the script does: gonogo / script = %.2f\n' "$(echo "$m4once / $ms" | bc -l)"
printf 'full proof: gonogo / script = %.2f (target <= 2.0)\n' "$(echo "$mf / $ms" | bc -l)"
echo "cores: $(nproc); load average: $(cut -d' ' -f1-3 /proc/loadavg); ${BENCH_PROFILE:-release} build"
