"""Stand-ins for host tools the procedures run, written from their upstream source.

Each is a script text with @PYTHON@ (the interpreter) and its own placeholders; the
tests write it to a directory on PATH (or to the path the procedure calls).
"""

from __future__ import annotations

import sys

# zextras/service-discover `bootstrap-token --setup` as its source has it
# (pkg/command/bootstrap_token.go @4364bced, pkg/term/term_unix.go): with --setup the
# prompt is "" (nothing printed); term.New refuses a stdin that is not a terminal with
# NotATerminalError, "the provided file descriptor (0) is not a terminal" (kong's
# FatalIfErrorf prints it as "service-discover: error: …", exit 1) before any fallback;
# then golang.org/x/term MakeRaw (TCSETS, no flush) and ReadPassword, whose line ends
# only at "\r" (keyEnter; "\n" is not printable and is dropped); the token is printed
# with fmt.Fprint, no newline.
SERVICE_DISCOVER = r"""#!@PYTHON@
import os, sys, termios, tty
if sys.argv[1:] != ["bootstrap-token", "--setup"]:
    sys.exit(2)
if not os.isatty(0):
    print("service-discover: error: the provided file descriptor (0) is not a terminal",
          file=sys.stderr)
    sys.exit(1)
old = termios.tcgetattr(0)
tty.setraw(0, termios.TCSANOW)
password = b""
while True:
    key = os.read(0, 1)
    if not key:
        sys.exit(1)
    if key == b"\r":
        break
    if key >= b" ":
        password += key
termios.tcsetattr(0, termios.TCSANOW, old)
if password.decode() != "@PASSWORD@":
    print("service-discover: error: wrong password", file=sys.stderr)
    sys.exit(1)
sys.stdout.write("@TOKEN@")
sys.stdout.flush()
"""


def service_discover(password: str, token: str) -> str:
    """The `service-discover` stand-in that takes PASSWORD on a terminal and prints
    TOKEN."""
    return (SERVICE_DISCOVER.replace("@PYTHON@", sys.executable)
            .replace("@PASSWORD@", password).replace("@TOKEN@", token))
