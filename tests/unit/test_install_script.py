"""scripts/install.sh on the two families CloudRig runs on, with stub package managers.

The script is run for real (`sh scripts/install.sh`) with a PATH that holds only a few
system tools and stubs: `apt-get`, `dnf` and the interpreters they would install. Each
stub records its argv; the interpreters understand exactly what the script asks of them
(the version probe, `-m venv`, `-m pip install`). Nothing is installed on this machine
and nothing is downloaded: what is tested is the script's own logic — which package
manager it asks for which package, which interpreter it then builds the virtualenv
from, and that it links `cloudrig` — on AlmaLinux 9 (python3 is 3.9; `dnf install
python3.11`, Red Hat's "Installing and using dynamic programming languages", ch. 1.1)
and on Debian 12 (python3 is 3.11 without venv until `apt-get install python3-venv`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cli_rig import REPO

SCRIPT = REPO / "scripts" / "install.sh"
TOOLS = ("sh", "env", "id", "dirname", "mkdir", "ln", "rm", "cat", "chmod", "touch")

# An interpreter stub: VERSION is what it claims; it satisfies install.sh's probe
# (`import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))`) only when it is
# 3.11 or newer and, for Debian's python3, once python3-venv is "installed" (a marker).
INTERPRETER = """#!/bin/sh
echo "$(basename "$0") $*" >> "{log}"
version="{version}"
if [ "$1" = "--version" ]; then echo "Python $version"; exit 0; fi
if [ "$1" = "-c" ]; then
    case "$version" in 3.9*) exit 1 ;; esac
    if [ -n "{needs}" ] && [ ! -e "{needs}" ]; then exit 1; fi
    exit 0
fi
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
    mkdir -p "$3/bin"
    cat > "$3/bin/python" <<'VENV'
#!/bin/sh
echo "venv-python $*" >> "{log}"
case "$1 $2" in
    "-m pip") exit 0 ;;
esac
case "$*" in
    *'version("cloudrig")'*) echo 9.9.9 ;;
esac
exit 0
VENV
    printf '#!/bin/sh\\necho "usage: cloudrig"\\n' > "$3/bin/cloudrig"
    chmod +x "$3/bin/python" "$3/bin/cloudrig"
    echo "$version" > "$3/made-by"
    exit 0
fi
exit 2
"""


def _write(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


def _interpreter(stubs: Path, name: str, version: str, log: Path, needs: str = "") -> str:
    return INTERPRETER.format(log=log, version=version, needs=needs)


@pytest.fixture
def sandbox(tmp_path: Path) -> dict[str, Path]:
    """A PATH of stubs plus the handful of system tools install.sh uses (no real python,
    apt-get or dnf on it), and where the install goes."""
    stubs, tools = tmp_path / "stubs", tmp_path / "tools"
    stubs.mkdir()
    tools.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        assert found, f"{tool} is needed to run install.sh"
        (tools / tool).symlink_to(found)
    _write(stubs / "basename", "#!/bin/sh\necho \"${1##*/}\"\n")
    _write(stubs / "sudo", '#!/bin/sh\nexec "$@"\n')  # for a non-root test run
    return {"stubs": stubs, "tools": tools, "log": tmp_path / "calls.log",
            "venv": tmp_path / "venv", "bin": tmp_path / "bin", "tmp": tmp_path}


def run_install(box: dict[str, Path]) -> subprocess.CompletedProcess[str]:
    env = {"PATH": f"{box['stubs']}:{box['tools']}", "HOME": str(box["tmp"]),
           "CLOUDRIG_VENV": str(box["venv"]), "CLOUDRIG_BIN_DIR": str(box["bin"]),
           "CLOUDRIG_NO_OPEN": "1", "TERM": "dumb"}
    return subprocess.run([shutil.which("sh") or "/bin/sh", str(SCRIPT)], env=env,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def calls(box: dict[str, Path]) -> list[str]:
    return box["log"].read_text().splitlines() if box["log"].exists() else []


def test_almalinux_9_installs_python311_with_dnf(sandbox: dict[str, Path]) -> None:
    """python3 is 3.9 and there is no apt-get: dnf installs python3.11, which then builds
    the virtualenv; the checkout is pip-installed into it and `cloudrig` linked."""
    box = sandbox
    log = box["log"]
    _write(box["stubs"] / "python3", _interpreter(box["stubs"], "python3", "3.9.18", log))
    python311 = _interpreter(box["stubs"], "python3.11", "3.11.9", log)
    _write(box["stubs"] / "dnf", f"""#!/bin/sh
echo "dnf $*" >> "{log}"
case " $* " in
    *" python3.11 "*) cat > "{box['stubs']}/python3.11" <<'PY'
{python311}PY
    chmod +x "{box['stubs']}/python3.11" ;;
esac
""")
    result = run_install(box)
    assert result.returncode == 0, result.stderr
    made = calls(box)
    assert "dnf install -y -q python3.11" in made
    assert not any(c.startswith("apt-get") for c in made)
    assert f"python3.11 -m venv {box['venv']}" in made
    assert (box["venv"] / "made-by").read_text().strip() == "3.11.9"
    assert f"venv-python -m pip install -q --upgrade {REPO}" in made
    assert os.readlink(box["bin"] / "cloudrig") == str(box["venv"] / "bin" / "cloudrig")
    assert "installing python3.11 with dnf" in result.stderr
    assert "CloudRig 9.9.9 is installed" in result.stderr


def test_debian_12_installs_python3_venv_with_apt(sandbox: dict[str, Path]) -> None:
    """python3 is 3.11 but has no venv until apt-get installs python3-venv; dnf is never
    asked, and the virtualenv is built from python3."""
    box = sandbox
    log, marker = box["log"], box["tmp"] / "python3-venv-installed"
    _write(box["stubs"] / "python3",
           _interpreter(box["stubs"], "python3", "3.11.2", log, needs=str(marker)))
    _write(box["stubs"] / "apt-get", f"""#!/bin/sh
echo "apt-get $*" >> "{log}"
case " $* " in *" python3-venv"*) touch "{marker}" ;; esac
""")
    _write(box["stubs"] / "dnf", f"#!/bin/sh\necho \"dnf $*\" >> \"{log}\"\nexit 1\n")
    result = run_install(box)
    assert result.returncode == 0, result.stderr
    made = calls(box)
    assert any(c.startswith("apt-get") and c.endswith("install -y -q --no-install-recommends "
                                                      "python3-venv") for c in made), made
    assert not any(c.startswith("dnf") for c in made)
    assert f"python3 -m venv {box['venv']}" in made


def test_an_existing_python311_needs_no_package_manager(sandbox: dict[str, Path]) -> None:
    """A rerun (upgrade) on AlmaLinux with python3.11 already there asks no one for root."""
    box = sandbox
    log = box["log"]
    _write(box["stubs"] / "python3", _interpreter(box["stubs"], "python3", "3.9.18", log))
    _write(box["stubs"] / "python3.11",
           _interpreter(box["stubs"], "python3.11", "3.11.9", log))
    _write(box["stubs"] / "dnf", f"#!/bin/sh\necho \"dnf $*\" >> \"{log}\"\n")
    result = run_install(box)
    assert result.returncode == 0, result.stderr
    assert not any(c.startswith("dnf") for c in calls(box))
    assert (box["venv"] / "made-by").read_text().strip() == "3.11.9"


def test_no_package_manager_and_an_old_python_says_what_to_install(
        sandbox: dict[str, Path]) -> None:
    box = sandbox
    _write(box["stubs"] / "python3",
           _interpreter(box["stubs"], "python3", "3.9.18", box["log"]))
    result = run_install(box)
    assert result.returncode == 1
    assert "dnf install python3.11" in result.stderr
    assert "apt-get install python3-venv" in result.stderr
    assert not box["venv"].exists()
