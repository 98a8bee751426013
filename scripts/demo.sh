#!/usr/bin/env bash
# The main job on the example fleet against the local sandbox:
#   install (once) → sandbox up → validate → plan → apply → plan shows no changes → sandbox down.
# Exit status is non-zero if any step fails or if the final plan is not empty.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
# (re)install when there is no .venv yet or pyproject.toml changed since the last install (a pulled dependency)
if [ ! -x .venv/bin/fleetctl ] || [ pyproject.toml -nt .venv/.fleetctl-installed ]; then
  echo "==> installing fleetctl into .venv"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet -e '.[dev]'
  touch .venv/.fleetctl-installed
fi
export PATH="$PWD/.venv/bin:$PATH"
FLEET=$(realpath "${FLEET:-fleet}")
WORK=$(mktemp -d)                       # the demo's own sandbox state, plan file and journal
export FLEETCTL_JOURNAL="$WORK/journal.jsonl"
cd "$WORK"
trap 'cd "$WORK" && fleetctl sandbox down >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT

echo "==> fleetctl sandbox up"
fleetctl sandbox up | sed -n 's/^# //p'     # the export lines stay quiet; the sandbox's demo notes are shown
eval "$(fleetctl sandbox env)"

echo "==> fleetctl validate $FLEET"
fleetctl validate "$FLEET"

echo "==> fleetctl plan $FLEET --out plan.json"
set +e
fleetctl plan "$FLEET" --out "$WORK/plan.json" --detailed-exitcode
code=$?
set -e
[ "$code" -eq 2 ] || { echo "expected changes on a fresh sandbox (exit 2), got $code" >&2; exit 1; }

echo "==> fleetctl apply plan.json"
fleetctl apply "$WORK/plan.json" --fleet "$FLEET"

echo "==> fleetctl plan $FLEET (must show no changes)"
fleetctl plan "$FLEET" --detailed-exitcode

echo "==> fleetctl sandbox down"
fleetctl sandbox down
echo "demo: OK"
