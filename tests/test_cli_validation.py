"""Bad input is refused with exit 2, a sentence per problem, and nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import files_under, write_answers

INVALID = {"external_port": 70000, "external_address": "not a host!", "db_name": None}


@pytest.fixture
def invalid_answers(tmp_path: Path) -> Path:
    return write_answers(tmp_path / "invalid.yaml", **INVALID)


def assert_names_each_field_with_an_example(stderr: str) -> None:
    lines = stderr.splitlines()
    for field, example in (("external_port", "5432"),
                           ("external_address", "external-database.example.com"),
                           ("db_name", "carbonio-files-adm")):
        line = next((ln for ln in lines if ln.strip().startswith(f"{field}:")), None)
        assert line is not None, f"{field} not named in:\n{stderr}"
        assert f"(for example: {field}: {example})" in line
    assert "70000" in stderr and "not a host!" in stderr and "is required" in stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize("command", ["plan", "render", "apply", "teardown"])
def test_invalid_answers_exit_2_naming_each_field(cli, invalid_answers: Path, tmp_path: Path,
                                                   command: str) -> None:
    target = tmp_path / "target"
    extra = {"plan": ["--root", target], "render": ["--out", target],
             "apply": ["--root", target, "--yes"], "teardown": ["--root", target, "--yes"]}
    result = cli(command, "carbonio", "--answers", invalid_answers, *extra[command])
    assert result.returncode == 2
    assert result.stdout == ""
    assert_names_each_field_with_an_example(result.stderr)
    assert not target.exists()
    assert files_under(cli.state) == []  # not even state or a log line


def test_invalid_answers_leave_an_existing_tree_untouched(cli, invalid_answers: Path,
                                                          answers_file: Path,
                                                          tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert cli("apply", "carbonio", "--answers", answers_file, "--root", root,
               "--yes").returncode == 0
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in files_under(root)}
    state_before = {p: p.read_bytes() for p in files_under(cli.state)}
    result = cli("apply", "carbonio", "--answers", invalid_answers, "--root", root, "--yes")
    assert result.returncode == 2
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in files_under(root)} == before
    assert {p: p.read_bytes() for p in files_under(cli.state)} == state_before


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("external_address: [unclosed\n", "is not valid YAML at line"),
        ("external_address: db\n  bad indent: 1\n", "is not valid YAML at line"),
        ("- a list\n- not a mapping\n", "must be a YAML mapping"),
        ("just a string\n", "must be a YAML mapping"),
    ],
)
def test_malformed_yaml_is_one_sentence(cli, tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = cli("plan", "carbonio", "--answers", path)
    assert result.returncode == 2
    assert expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_missing_answers_file_says_how_to_create_one(cli, tmp_path: Path) -> None:
    result = cli("plan", "carbonio", "--answers", tmp_path / "nope.yaml")
    assert result.returncode == 2
    assert "does not exist" in result.stderr and "cloudrig init" in result.stderr


@pytest.mark.parametrize("command", ["plan", "apply", "init", "status"])
def test_unknown_procedure_exits_2(cli, answers_file: Path, command: str) -> None:
    args = {"plan": ["--answers", answers_file], "apply": ["--answers", answers_file, "--yes"],
            "init": [], "status": []}[command]
    result = cli(command, "no-such-procedure", *args)
    assert result.returncode == 2
    assert "unknown procedure 'no-such-procedure'" in result.stderr
    assert "carbonio" in result.stderr  # names the known ones
    assert "Traceback" not in result.stderr


def test_unknown_answer_key_exits_2(cli, tmp_path: Path) -> None:
    path = write_answers(tmp_path / "typo.yaml", external_prot=5432)
    result = cli("plan", "carbonio", "--answers", path)
    assert result.returncode == 2
    assert "external_prot: is not a known answer" in result.stderr


def test_wrong_type_names_the_field_and_a_good_example(cli, tmp_path: Path) -> None:
    path = write_answers(tmp_path / "types.yaml", external_port="five", create_database="maybe")
    result = cli("plan", "carbonio", "--answers", path)
    assert result.returncode == 2
    assert "(for example: external_port: 5432)" in result.stderr
    assert "(for example: create_database: false)" in result.stderr


def test_unknown_step_exits_2(cli, answers_file: Path, tmp_path: Path) -> None:
    result = cli("apply", "carbonio", "--answers", answers_file, "--root", tmp_path / "r",
                 "--yes", "--step", "nope")
    assert result.returncode == 2
    assert "no step 'nope'" in result.stderr and "policy" in result.stderr
    assert not (tmp_path / "r").exists()


def test_bad_usage_is_exit_2(cli) -> None:
    assert cli("plan", "carbonio").returncode == 2  # --answers is required
    assert cli("frobnicate").returncode == 2
