#!/usr/bin/env bash
# The repeat check: the reference proof and the FastAPI proof, N times each
# (default 20), with the default (concurrent) schedule; counts GO per
# scenario and prints every other verdict with its failed steps. Too slow
# for the test suite; run by hand. Exit 0 only when every run was GO.
#
#   benches/repeat.sh [N] [extra gonogo run flags, e.g. --serial]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20}
shift || true
[[ -x examples/fastapi-backend/.venv/bin/uvicorn ]] || examples/fastapi-backend/setup
cargo build --workspace --quiet
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
failed=0
for scenario in scenarios/reference.toml scenarios/fastapi-backend.toml; do
  go=0
  start=$SECONDS
  for i in $(seq 1 "$N"); do
    if line=$(target/debug/gonogo run "$scenario" --quiet --out "$OUT" "$@" 2>"$OUT/stderr"); then
      go=$((go + 1))
    else
      echo "$scenario run $i: ${line:-no verdict}" >&2
      grep -E "FAIL|NOT RUN|error" "$OUT/stderr" >&2 || true
      failed=1
    fi
  done
  echo "$scenario: $go of $N GO ($((SECONDS - start)) s)"
done
echo "cores: $(nproc); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
exit "$failed"
