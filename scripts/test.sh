#!/usr/bin/env bash
# The whole test suite: lint and types, then every test (unit and integration) on a real
# libvirtd with qemu, inside a network namespace made for the run (scripts/in-testns.sh).
# Run as root on Debian 12:  scripts/test.sh [PYTEST ARGS...]
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
log() { echo "test.sh: $*" >&2; }

scripts/setup-host.sh --test --no-services
bin="$repo/.venv/bin"

log "ruff, mypy, shellcheck"
"$bin/ruff" check .
MYPY="$bin/mypy" scripts/typecheck.sh
mapfile -t shells < <(git ls-files '*.sh')
shellcheck "${shells[@]}"

log "building (or reusing) the test guest"
OSLAB_TEST_ISO=$(OSLAB_PYTHON="$bin/python" tests/guest/build.sh | tail -n 1)
export OSLAB_TEST_ISO

log "building (or reusing) the test instance image"
OSLAB_TEST_INSTANCE_IMAGE=$(tests/instance/build.sh | tail -n 1)
export OSLAB_TEST_INSTANCE_IMAGE

# Only the host's apt reaches Debian's archive; inside the test namespace nothing does.
log "building (or reusing) the Debian labs' package repositories (the host's apt)"
"$bin/python" -m tests.debian_specs

log "preparing (or reusing) the Keystone venv for the verification tests"
OSLAB_KEYSTONE_VENV=$(tests/keystone/setup.sh | tail -n 1)
export OSLAB_KEYSTONE_VENV

export OSLAB_REQUIRE_INTEGRATION=1
scripts/in-testns.sh "$bin/pytest" "$@"
