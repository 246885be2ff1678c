# Sourced by scripts/serve, scripts/test and scripts/fuzz: make .venv with the project installed
# in it, the dependencies at exactly the versions (and hashes) of the lockfile
# requirements/<profile>.txt, the profile being LFD_VENV_PROFILE:
#   serve  what the service needs to run (scripts/serve; the Docker image installs the same)
#   dev    serve + the test tools (scripts/test, CI)                        [the default]
#   fuzz   dev + schemathesis (scripts/fuzz)
# Each profile's versions agree with the others'. After changing dependencies in pyproject.toml
# regenerate the three files with scripts/lock.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
PROFILE="${LFD_VENV_PROFILE:-dev}"
LOCK="requirements/$PROFILE.txt"
if [ ! -f "$LOCK" ]; then
  echo "no lockfile $LOCK (LFD_VENV_PROFILE is serve, dev or fuzz)" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
STAMP=".venv/.installed-$PROFILE"
if [ ! -f "$STAMP" ] || [ "$LOCK" -nt "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet --require-hashes --no-deps -r "$LOCK"
  .venv/bin/python -m pip install --quiet --no-deps -e .
  touch "$STAMP"
fi
export PATH="$ROOT/.venv/bin:$PATH"
