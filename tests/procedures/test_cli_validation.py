"""Bad input is refused with exit 2, a sentence per problem, and nothing written."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cli_rig import files_under, write_answers

INVALID = {"external_port": 70000, "external_address": "not a host!", "db_name": None}


@pytest.fixture
def invalid_answers(tmp_path: Path) -> Path:
    return write_answers(tmp_path / "invalid.yaml", **INVALID)


def assert_names_each_field_with_an_example(stderr: str) -> None:
    lines = stderr.splitlines()
    for field, example in (("external_port", "5432"),
                           ("external_address", "external-database.example.com"),
                           ("db_name", "carbonio-files-adm")):
        # `  line 3, column 1: external_port: …` (a missing key has no line)
        line = next((ln for ln in lines
                     if re.match(rf"  (line \d+, column \d+: )?{field}: ", ln)), None)
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


# ---------------------------------------------------------------- strict answers files


def _answers_text(tmp_path: Path, extra: str, name: str = "strict.yaml") -> Path:
    """The required carbonio answers on lines 1-3, then EXTRA from line 4 on."""
    path = tmp_path / name
    path.write_text("external_address: db.example.com\ndb_name: files\n"
                    "db_username: filesuser\n" + extra, encoding="utf-8")
    return path


@pytest.mark.parametrize(("written", "read_as"), [
    ("true", "true"), ("yes", "true"), ("on", "true"), ("Off", "false")])
def test_a_yaml_boolean_is_not_a_port(cli, tmp_path: Path, written: str, read_as: str) -> None:
    """`external_port: yes` was port 1 in the catalog, the JSON and the unit: YAML 1.1
    booleans are refused for a number, naming the line, what was written and how YAML
    read it, and nothing is rendered."""
    path = _answers_text(tmp_path, f"external_port: {written}\n")
    out = tmp_path / "out"
    result = cli("render", "carbonio", "--answers", path, "--out", out)
    assert result.returncode == 2, result.stderr
    assert (f"line 4, column 1: external_port: must be a number, not a boolean (got "
            f"{written}, which YAML reads as {read_as}) (for example: external_port: 5432)"
            ) in result.stderr
    assert not out.exists()


def test_quoted_numbers_and_numeric_booleans_are_refused(cli, tmp_path: Path) -> None:
    """No string-to-number coercion and no 1/0 as a boolean: each names its line."""
    path = _answers_text(tmp_path, 'external_port: "5432"\ncreate_database: 1\n'
                                   'consul_url: http://127.0.0.1:8500\n'
                                   'create_database_owner: "yes"\n')
    result = cli("plan", "carbonio", "--answers", path)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[1] == ('  line 4, column 1: external_port: must be a number, not text (got '
                        '"5432"); write it without quotes (for example: external_port: 5432)')
    assert lines[2].startswith("  line 5, column 1: create_database: must be true or false, "
                               "not a number (got 1)")
    assert "line 7, column 1: create_database_owner: is not a known answer" in result.stderr


def test_a_duplicate_key_is_an_error_naming_both_lines(cli, tmp_path: Path) -> None:
    """PyYAML keeps the last of two equal keys silently; an answers file may not."""
    path = _answers_text(tmp_path, "external_port: 5432\nconsul_url: http://c:8500\n"
                                   "  # a comment\nexternal_port: 6432\n")
    result = cli("plan", "carbonio", "--answers", path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"cloudrig: {path}: line 7, column 1: external_port: is given twice, at line 4 and "
        "again at line 7; keep one of them (YAML would silently keep the last)")
    assert result.stdout == ""


def test_unknown_key_names_line_column_and_the_closest_known_key(cli, tmp_path: Path) -> None:
    """A typo: where it is (line and column) and what was meant; --json says the same."""
    path = _answers_text(tmp_path, "external_port: 5432\ncreate_databse: true\n")
    result = cli("plan", "carbonio", "--answers", path)
    assert result.returncode == 2
    expected = ("line 5, column 1: create_databse: is not a known answer; did you mean "
                "`create_database`?")
    assert f"  {expected}" in result.stderr.splitlines()

    as_json = cli("plan", "carbonio", "--answers", path, "--json")
    assert as_json.returncode == 2
    report = json.loads(as_json.stdout)
    assert report["error"] == "invalid answers" and report["source"] == str(path)
    [problem] = report["problems"]
    assert problem == {"field": "create_databse", "problem": "is not a known answer",
                       "example": None, "line": 5, "column": 1,
                       "suggestion": "create_database", "message": expected}
    # the same words as the text output, on stderr too
    assert f"cloudrig: {report['message']}" == as_json.stderr.strip()
    assert report["message"] == result.stderr.strip().removeprefix("cloudrig: ")


def test_json_errors_carry_line_and_column_of_nested_and_syntax_problems(
        cli, tmp_path: Path) -> None:
    """A bad value deep in a mapping is located at its own key; a YAML syntax error at
    its mark; both as JSON under --json."""
    path = tmp_path / "cloudblue.yaml"
    path.write_text("templates:\n  PRD-111-222-333:\n    grant: TL-111-222-333\n"
                    "    revok: TL-111-222-444\n", encoding="utf-8")
    report = json.loads(cli("plan", "cloudblue", "--answers", path, "--json").stdout)
    located = {p["field"]: (p["line"], p["column"]) for p in report["problems"]}
    assert located["templates.PRD-111-222-333.revok"] == (4, 5)
    assert located["templates.PRD-111-222-333.revoke"] == (2, 3)  # missing: its mapping's key

    broken = tmp_path / "broken.yaml"
    broken.write_text("external_address: db\ndb_name: [unclosed\n", encoding="utf-8")
    result = cli("plan", "carbonio", "--answers", broken, "--json")
    assert result.returncode == 2
    [problem] = json.loads(result.stdout)["problems"]
    assert problem["line"] is not None and problem["column"] is not None
    assert "is not valid YAML at line" in result.stderr


def test_yaml_merge_keys_are_not_duplicates_but_nested_repeats_are() -> None:
    """`<<: *base` then a key of base overridden is YAML's merge, not a repeat; a key
    repeated inside a nested mapping is one, named by its path."""
    from tui.answers import DuplicateKey, read_yaml

    data, where = read_yaml("base: &b {x: 1, y: 2}\nuse:\n  <<: *b\n  x: 3\n")
    assert data["use"] == {"x": 3, "y": 2}
    assert where.find(("use", "x")) == ((4, 3), "3")
    with pytest.raises(DuplicateKey) as dup:
        read_yaml("templates:\n  PRD-1:\n    grant: a\n    grant: b\n")
    assert (dup.value.path, dup.value.first, dup.value.line) == ("templates.PRD-1.grant", 3, 4)
