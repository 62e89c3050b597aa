#!/bin/sh
# Install CloudRig from this checkout for an operator, then open it.
#
#   sh scripts/install.sh            # as root: /opt/cloudrig + /usr/local/bin/cloudrig
#                                    # as a user: ~/.local/share/cloudrig/venv + ~/.local/bin
#
# Rerunning it upgrades the installation in place. Settings (environment):
#   CLOUDRIG_VENV=DIR      where the virtualenv goes
#   CLOUDRIG_BIN_DIR=DIR   where the `cloudrig` link goes
#   CLOUDRIG_SKIP_APT=1    do not run apt-get or dnf (Python >= 3.11 already there)
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

# --- 1. an interpreter that is new enough and has venv (>= 3.11) ------------------------
# Looked up on PATH only (PYTHON=/path chooses another); the newest versioned name first
# after python3, as the RHEL family keeps python3 at its release's version.
find_python() {
    for candidate in python3 python3.13 python3.12 python3.11; do
        if "$candidate" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' \
            >/dev/null 2>&1; then
            printf '%s\n' "$candidate"
            return 0
        fi
    done
    return 1
}

# --- 2. system packages, only when no such interpreter is there yet -----------------------
# Debian 12: python3 is 3.11 but venv/ensurepip come with python3-venv (apt-get).
# The RHEL family (AlmaLinux, Rocky, RHEL 9 — where the CloudBlue connector runs): python3
# is 3.9 for the release's life; python3.11 is a parallel AppStream package since 9.2
# (Red Hat, "Installing and using dynamic programming languages", ch. 1.1), with venv.
python=${PYTHON:-}
if [ -z "$python" ] && ! python=$(find_python); then
    python=""
    if [ "${CLOUDRIG_SKIP_APT:-0}" = 1 ]; then
        say "skipping the package manager (CLOUDRIG_SKIP_APT=1)"
    elif [ "$as_root" = none ]; then
        say "not root and no sudo: cannot install Python packages"
    elif command -v apt-get >/dev/null 2>&1; then
        say "installing python3-venv with apt-get"
        # shellcheck disable=SC2086  # $as_root is empty or "sudo"
        $as_root env DEBIAN_FRONTEND=noninteractive apt-get -o Acquire::Retries=3 update -q
        # shellcheck disable=SC2086
        $as_root env DEBIAN_FRONTEND=noninteractive apt-get -o Acquire::Retries=3 install -y \
            -q --no-install-recommends python3-venv
    elif command -v dnf >/dev/null 2>&1; then
        say "installing python3.11 with dnf (this system's python3 is older than 3.11)"
        # shellcheck disable=SC2086
        $as_root dnf install -y -q python3.11
    else
        say "neither apt-get nor dnf here: install Python >= 3.11 with its venv module yourself"
    fi
    python=$(find_python) || python=""
fi
[ -n "$python" ] || die "CloudRig needs Python >= 3.11 with the venv module (Debian 12: \
apt-get install python3-venv; AlmaLinux/RHEL 9: dnf install python3.11); set \
PYTHON=/path/to/python3.11 to choose one"

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
