#!/bin/sh
# Install CloudRig from this checkout for an operator, then open it.
#
#   sh scripts/install.sh            # as root: /opt/cloudrig + /usr/local/bin/cloudrig
#                                    # as a user: ~/.local/share/cloudrig/venv + ~/.local/bin
#
# Rerunning it upgrades the installation in place. Settings (environment):
#   CLOUDRIG_VENV=DIR      where the virtualenv goes
#   CLOUDRIG_BIN_DIR=DIR   where the `cloudrig` link goes
#   CLOUDRIG_SKIP_APT=1    do not touch Debian packages (python3-venv already there)
#   CLOUDRIG_NO_OPEN=1     do not open the TUI at the end
#   PYTHON=python3.12      the interpreter to build the virtualenv from (>= 3.11)
set -eu

say() { printf '%s\n' "cloudrig-install: $*" >&2; }
die() { say "$*"; exit 1; }

here=$(cd "$(dirname "$0")/.." && pwd)
[ -f "$here/pyproject.toml" ] && [ -d "$here/tui" ] \
    || die "run this script from a CloudRig checkout ($here has no pyproject.toml/tui)"

if [ "$(id -u)" -eq 0 ]; then
    venv=${CLOUDRIG_VENV:-/opt/cloudrig}
    bin_dir=${CLOUDRIG_BIN_DIR:-/usr/local/bin}
    as_root=""
else
    venv=${CLOUDRIG_VENV:-${XDG_DATA_HOME:-$HOME/.local/share}/cloudrig/venv}
    bin_dir=${CLOUDRIG_BIN_DIR:-$HOME/.local/bin}
    if command -v sudo >/dev/null 2>&1; then as_root="sudo"; else as_root="none"; fi
fi

# --- 1. Debian packages: python3-venv (venv + ensurepip for Debian's python3) ---------
if [ "${CLOUDRIG_SKIP_APT:-0}" = 1 ]; then
    say "skipping apt-get (CLOUDRIG_SKIP_APT=1)"
elif ! command -v apt-get >/dev/null 2>&1; then
    say "no apt-get here: make sure Python >= 3.11 with the venv module is installed"
elif [ "$as_root" = none ]; then
    say "not root and no sudo: skipping apt-get (python3-venv must already be installed)"
else
    say "installing python3-venv with apt-get"
    # shellcheck disable=SC2086  # $as_root is empty or "sudo"
    $as_root env DEBIAN_FRONTEND=noninteractive apt-get -o Acquire::Retries=3 update -q
    # shellcheck disable=SC2086
    $as_root env DEBIAN_FRONTEND=noninteractive apt-get -o Acquire::Retries=3 install -y -q \
        --no-install-recommends python3-venv
fi

# --- 2. an interpreter that is new enough and has venv ----------------------------------
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
[ -n "$python" ] || die "CloudRig needs Python >= 3.11 with the venv module (Debian 12: \
apt-get install python3-venv); set PYTHON=/path/to/python3.11 to choose one"

# --- 3. the virtualenv and a non-editable install of this checkout ----------------------
if [ -x "$venv/bin/python" ] && ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
    say "$venv is broken (its Python is gone): recreating it"
    rm -rf "$venv"
fi
if [ ! -x "$venv/bin/python" ]; then
    say "creating the virtualenv $venv ($("$python" --version 2>&1))"
    mkdir -p "$(dirname "$venv")"
    "$python" -m venv "$venv"
fi
say "installing CloudRig from $here into $venv"
PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/python" -m pip install -q --upgrade "$here"
"$venv/bin/cloudrig" --help >/dev/null || die "the installed cloudrig does not start"

# --- 4. the `cloudrig` command on PATH --------------------------------------------------
mkdir -p "$bin_dir"
ln -sfn "$venv/bin/cloudrig" "$bin_dir/cloudrig"
say "linked $bin_dir/cloudrig -> $venv/bin/cloudrig"
case ":$PATH:" in
    *":$bin_dir:"*) cmd=cloudrig ;;
    *)
        cmd="$bin_dir/cloudrig"
        say "$bin_dir is not on your PATH; add it: export PATH=\"$bin_dir:\$PATH\"" \
            "(for ~/.local/bin, Debian's ~/.profile does so at your next login)"
        ;;
esac

version=$("$venv/bin/python" -c 'from importlib.metadata import version; print(version("cloudrig"))')
say "CloudRig $version is installed"

# --- 5. open it, or say how ----------------------------------------------------------------
if [ "${CLOUDRIG_NO_OPEN:-0}" != 1 ] && [ -t 0 ] && [ -t 1 ] && [ "${TERM:-dumb}" != dumb ]; then
    say "opening CloudRig"
    exec "$venv/bin/cloudrig"
fi
cat <<EOF

CloudRig is installed. Open it in a terminal (80x24 or larger) with:

    $cmd

or, without a screen:

    $cmd list
    $cmd init carbonio -o answers.yaml
    $cmd plan carbonio --answers answers.yaml
EOF
