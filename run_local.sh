#!/usr/bin/env bash
# beamforce on this machine.
#   ./run_local.sh [pipeline options...]  the pipeline over the bundled sample events into a local Salesforce
#   ./run_local.sh test [pytest args...]  the test suite
#   ./run_local.sh stream [--kafka] [...]  the streaming demo: sample events published to the Pub/Sub
#                                         emulator (or a Kafka broker) into a local Salesforce
#                                         (examples/stream_demo.py --help for its options)
# All create .venv and install what they need when it is missing or out of date.
set -euo pipefail
cd "$(dirname "$0")"

find_python() {
  for candidate in "${PYTHON:-}" python3.11 python3.12 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] < (3, 13) else 1)' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "run_local.sh: Python 3.11 or 3.12 is needed (set PYTHON=/path/to/python3.11)" >&2
  return 1
}

# Installs the project (with the given extra) into .venv when pyproject.toml changed since the last install.
ensure_venv() {
  local extra="$1" stamp want
  if [ ! -x .venv/bin/python ]; then
    "$(find_python)" -m venv .venv
  fi
  stamp=".venv/.beamforce-installed-${extra:-base}"
  want=$(sha256sum pyproject.toml | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "run_local.sh: installing dependencies into .venv (the first run takes a few minutes)..." >&2
    if ! { .venv/bin/python -m pip install --upgrade pip &&
           .venv/bin/python -m pip install -e ".${extra:+[$extra]}"; } > .venv/install.log 2>&1; then
      tail -n 30 .venv/install.log >&2
      echo "run_local.sh: installing failed; the whole log is in .venv/install.log" >&2
      return 1
    fi
    echo "$want" > "$stamp"
  fi
}

if [ "${1:-}" = "test" ]; then
  shift
  ensure_venv test
  exec .venv/bin/python -m pytest "$@"
fi

if [ "${1:-}" = "stream" ]; then
  shift
  ensure_venv demo
  exec .venv/bin/python -m examples.stream_demo "$@"
fi

ensure_venv emulator
exec .venv/bin/python examples/run_local.py "$@"
