#!/bin/sh
# Install what CloudRig's tests need and run them (this is what CI runs: .ci/run).
#
#   sh scripts/test.sh                 # everything
#   sh scripts/test.sh -k secrets -x   # extra arguments go to pytest
#
# 1. Debian packages the tests use (apt-get; as root, or through sudo when it exists).
# 2. A virtualenv (.venv-test in the checkout) with CloudRig installed NON-editable
#    with its [test] extras, so a file missing from the wheel (a template, a .tcss)
#    fails the tests instead of being found in the checkout.
# 3. The installed package is the one imported (checked).
# 4. The import layers (import-linter's contracts in pyproject.toml) and no import
#    circle in `tui` (scripts/import_cycles.py), on the installed package, then mypy
#    ([tool.mypy] in pyproject.toml) on tui/ and screens/; any failing fails the script.
# 5. pytest from the checkout, importing the installed package.
#
# Settings (environment):
#   CLOUDRIG_TEST_VENV=DIR   the virtualenv to use (default: .venv-test in the checkout)
#   CLOUDRIG_SKIP_APT=1      do not run apt-get (the packages are already there)
#   PYTEST_WORKERS=N         pytest-xdist workers (default: auto, one per core; 0 = off)
#   PYTHON=python3.12        the interpreter to build the virtualenv from (>= 3.11)
set -eu

say() { printf '%s\n' "cloudrig-test: $*" >&2; }
die() { say "$*"; exit 1; }

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
started=$(date +%s)

# --- 1. Debian packages ----------------------------------------------------------------
# python3-venv python3-pip  the virtualenv (Debian's python3 has no ensurepip without them)
# systemd                   systemd-analyze verify, for the rendered units
# postgresql                a real PostgreSQL server started by test fixtures
# genisoimage               isoinfo, to read config-drive ISOs back
# util-linux                blkid (volume labels of config drives)
# openssl                   test certificates for TLS
# tmux                      driving the real TUI in a terminal, as an operator would
# cloud-init                its own config-drive reader reads CloudRig's ISOs back
# chromium chromium-driver  a real headless browser on `cloudrig serve` (tests/test_browser.py)
# openssh-server openssh-client  the TUI over a real `ssh -tt` login (tests/test_ssh_terminal.py)
DEBIAN_PACKAGES="python3-venv python3-pip systemd postgresql genisoimage util-linux openssl tmux
    cloud-init chromium chromium-driver openssh-server openssh-client"

if [ "$(id -u)" -eq 0 ]; then
    as_root=""
elif command -v sudo >/dev/null 2>&1; then
    as_root="sudo"
else
    as_root="none"
fi

if [ "${CLOUDRIG_SKIP_APT:-0}" = 1 ]; then
    say "skipping apt-get (CLOUDRIG_SKIP_APT=1)"
elif ! command -v apt-get >/dev/null 2>&1; then
    say "no apt-get here: install by hand: $DEBIAN_PACKAGES"
elif [ "$as_root" = none ]; then
    say "not root and no sudo: skipping apt-get; tests needing these may fail: $DEBIAN_PACKAGES"
else
    say "apt-get install $DEBIAN_PACKAGES"
    # shellcheck disable=SC2086  # $as_root is empty or "sudo"
    $as_root env DEBIAN_FRONTEND=noninteractive apt-get -o Acquire::Retries=3 update -q
    # shellcheck disable=SC2086
    $as_root env DEBIAN_FRONTEND=noninteractive apt-get -o Acquire::Retries=3 install -y -q \
        --no-install-recommends $DEBIAN_PACKAGES
fi

# --- 2. the virtualenv -----------------------------------------------------------------
python=${PYTHON:-}
if [ -z "$python" ]; then
    for candidate in python3 /usr/bin/python3; do
        if "$candidate" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' \
            >/dev/null 2>&1; then
            python=$candidate
            break
        fi
    done
fi
[ -n "$python" ] || die "the tests need Python >= 3.11 with the venv module"

venv=${CLOUDRIG_TEST_VENV:-$here/.venv-test}
if [ -x "$venv/bin/python" ] && ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
    rm -rf "$venv"
fi
if [ ! -x "$venv/bin/python" ]; then
    say "creating $venv ($("$python" --version 2>&1))"
    "$python" -m venv "$venv"
fi

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off
say "pip install '.[test]' (non-editable) into $venv"
# A non-editable install of this checkout; pip rebuilds a local directory every time,
# so a reused virtualenv gets the current code.
"$venv/bin/python" -m pip install -q --upgrade "$here[test]"

# --- 3. the tests import the INSTALLED package -------------------------------------------
# PYTHONSAFEPATH: `python -m …` and `python -c …` (here and in every subprocess a
# test starts) do not put the current directory on sys.path, so `tui` is always
# the installed one, never ./tui. pytest itself puts only tests/, its layer folders
# and tests/support (`pythonpath` in pyproject.toml) on sys.path — never the checkout's
# root (no conftest.py there, no __init__.py under tests/).
export PYTHONSAFEPATH=1
export CLOUDRIG_TESTING_INSTALLED=1
installed=$("$venv/bin/python" -c 'import tui, sys; print(tui.__file__)')
case "$installed" in
    "$here/tui/"*) die "tests would import the checkout ($installed), not the installed package" ;;
esac
say "tests import $installed"

# --- 4. the import layers ----------------------------------------------------------------
say "lint-imports (the layer contracts in pyproject.toml)"
"$venv/bin/lint-imports" --no-cache || die "an import breaks a layer contract (above)"
for package in "$(dirname "$installed")" "$(dirname "$(dirname "$installed")")/screens"; do
    "$venv/bin/python" "$here/scripts/import_cycles.py" "$package" \
        || die "an import circle in $(basename "$package") (above)"
done
say "mypy (the types of tui/ and screens/: [tool.mypy] in pyproject.toml)"
"$venv/bin/mypy" --config-file "$here/pyproject.toml" \
    || die "mypy found type errors in tui/ or screens/ (above)"

# --- 5. pytest --------------------------------------------------------------------------
# Tests never touch the operator's state, keyring or a real terminal.
CLOUDRIG_STATE_DIR=$(mktemp -d "${TMPDIR:-/tmp}/cloudrig-test-state.XXXXXX")
export CLOUDRIG_STATE_DIR
trap 'rm -rf "$CLOUDRIG_STATE_DIR"' EXIT

workers=${PYTEST_WORKERS:-auto}
# worksteal: a worker that runs out takes tests queued on the other, so one long test
# near the end does not leave a core idle while a queue waits behind it.
if [ "$workers" = 0 ]; then xdist=""; else xdist="-n $workers --dist worksteal"; fi

say "running pytest"
status=0
# shellcheck disable=SC2086  # $xdist is empty or four words
"$venv/bin/pytest" -p no:cacheprovider $xdist "$@" || status=$?
elapsed=$(( $(date +%s) - started ))
# On success pytest's own summary ("N passed in …") stays the last line printed, so
# whoever reads CI's closing lines reads the test runner's count.
case $status in
    0) ;;
    5) say "pytest collected no tests: that is a failure (${elapsed}s)" ;;
    *) say "tests failed: pytest exit status $status (${elapsed}s)" ;;
esac
exit "$status"
