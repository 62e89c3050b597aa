"""Under --root DIR every file is named by its final host path, never by DIR."""

from __future__ import annotations

import json
from pathlib import Path

from cli_rig import CARBONIO_FILES, CARBONIO_SECRET_FILES, files_under


def without_root_key(data):
    """The JSON minus the one field whose job is to say what --root was."""
    if isinstance(data, dict):
        return {k: without_root_key(v) for k, v in data.items() if k != "root"}
    if isinstance(data, list):
        return [without_root_key(v) for v in data]
    return data


def test_plan_json_names_final_paths(cli, answers_file: Path, tmp_path: Path) -> None:
    root = tmp_path / "STAGING-ROOT"
    result = cli("plan", "carbonio", "--answers", answers_file, "--root", root, "--json")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["root"] == str(root)
    items = [item for step in plan["steps"] for item in step["items"]]
    files = [i for i in items if i["kind"] == "file"]
    # The token comes from Consul at apply time; the database SQL is planned (secret).
    assert sorted(i["path"] for i in files) == sorted([*CARBONIO_FILES, CARBONIO_SECRET_FILES[1]])
    for item in files:
        if not item["secret"]:
            assert f"+++ {item['path']}\n" in item["diff"]
    assert str(root) not in json.dumps(without_root_key(plan))
    assert "STAGING-ROOT" not in json.dumps(without_root_key(plan))


def test_apply_status_state_log_and_files_never_name_the_root(cli, answers_file: Path,
                                                              tmp_path: Path) -> None:
    root = tmp_path / "STAGING-ROOT"
    runs = [cli("plan", "carbonio", "--answers", answers_file, "--root", root),
            cli("apply", "carbonio", "--answers", answers_file, "--root", root, "--yes")]
    hand_edited = root / CARBONIO_FILES[0].lstrip("/")
    hand_edited.write_text("{}\n")
    runs += [cli("status", "carbonio"),
             cli("plan", "carbonio", "--answers", answers_file, "--root", root),
             cli("apply", "carbonio", "--answers", answers_file, "--root", root, "--yes"),
             cli("status", "carbonio")]
    # status exits 1 while anything is not done: first the drift, then the manual steps.
    assert [r.returncode for r in runs] == [0, 0, 1, 0, 0, 1], [r.stderr for r in runs]

    for result in runs:
        assert "STAGING-ROOT" not in result.output, (result.args, result.output)
    assert f"--- {CARBONIO_FILES[0]}" in runs[3].stdout  # the diff names the final path
    assert "previous version saved as /etc/carbonio/" in runs[4].stderr
    for path in CARBONIO_FILES:
        assert path in runs[1].stderr

    on_disk = files_under(root)
    assert len(on_disk) == 7  # the four files, the two secret ones and one backup
    for path in on_disk:
        assert "STAGING-ROOT" not in path.read_text(), path

    log = (cli.state / "cloudrig.log").read_text()
    assert "STAGING-ROOT" not in log
    assert CARBONIO_FILES[0] in log
    state = json.loads((cli.state / "carbonio.json").read_text())
    assert state["root"] == str(root)  # remembered so `status` checks the same tree
    assert "STAGING-ROOT" not in json.dumps(without_root_key(state))


def test_status_json_names_final_paths(cli, answers_file: Path, tmp_path: Path) -> None:
    root = tmp_path / "STAGING-ROOT"
    assert cli("apply", "carbonio", "--answers", answers_file, "--root", root,
               "--yes").returncode == 0
    status = json.loads(cli("status", "carbonio", "--json").stdout)
    details = " ".join(step["detail"] for step in status["steps"])
    for path in CARBONIO_FILES:
        assert f"{path} in place" in details
    assert "STAGING-ROOT" not in json.dumps(without_root_key(status))


def test_render_out_names_final_paths(cli, answers_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "RENDER-OUT"
    result = cli("render", "carbonio", "--answers", answers_file, "--out", out)
    assert result.returncode == 0
    assert "RENDER-OUT" not in result.output
    assert sorted(line.split(": ")[0] for line in result.stderr.splitlines()) == sorted(
        CARBONIO_FILES)
    for path in files_under(out):
        assert "RENDER-OUT" not in path.read_text()
