"""Every CLI failure is one line (exit 1 runtime, 2 usage), never a traceback (issue 14).

The cases of the issue: `summarize --out` pointing at a file, non-UTF-8 `--manifest`, `--synonyms`
and `--labels` files, a 200,000-deep JSON line, and `calibrate` with labels matching no prompt
(a warning, not silence). The console script's last-resort net is checked too.
"""

from __future__ import annotations

import json
import re
import sys
import warnings
from pathlib import Path

import pytest
from test_trust_cli import stacked
from typer.testing import CliRunner

from novajudge.cli import app as cli_app
from novajudge.cli.app import _register, app

_register()
NOT_UTF8 = b'{"prompt_id": "p0", "preference": "\xff"}\n'
DEEP = b"[" * 200_000 + b"]" * 200_000 + b"\n"


@pytest.fixture
def results_dir(tmp_path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stacked().to_parquet(tmp_path / "details.parquet", index=False)
    (tmp_path / "summary.json").write_text(json.dumps({"variant": "rubric"}))
    return tmp_path


def _one_line_error(result, code: int, *fragments: str) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_summarize_out_pointing_at_a_file_is_a_usage_error(tmp_path: Path) -> None:
    archive = tmp_path / "output.tar.gz"
    archive.write_bytes(b"x")
    target = tmp_path / "results.txt"
    target.write_text("not a folder")
    result = CliRunner().invoke(app, ["summarize", str(archive), "--out", str(target)])
    assert result.exit_code == 2, result.output
    flat = " ".join(re.sub("[│╭╮╰╯─]", " ", result.output).split())  # Rich's usage box, unwrapped
    assert "is a file; give a folder" in flat and "--out" in flat
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [(NOT_UTF8, "line 1: not UTF-8 text (byte"), (DEEP, "not valid JSON here (nested too deeply")],
)
def test_summarize_manifest_problems_are_one_line(tmp_path: Path, content: bytes, fragment: str) -> None:
    """(A line of `[`s is read as the JSON-list form of the manifest: one value, same message.)"""
    archive = tmp_path / "output.tar.gz"
    archive.write_bytes(b"x")
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_bytes(content)
    result = CliRunner().invoke(app, ["summarize", str(archive), "--out", str(tmp_path / "o"),
                                      "--manifest", str(manifest)])  # fmt: skip
    _one_line_error(result, 1, str(manifest), fragment)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [(NOT_UTF8, "line 1: not UTF-8 text (byte"), (DEEP, "line 1: not valid JSON here (nested too deeply")],
)
def test_calibrate_labels_problems_are_one_line(results_dir: Path, content: bytes, fragment: str) -> None:
    labels = results_dir / "labels.jsonl"
    labels.write_bytes(content)
    result = CliRunner().invoke(app, ["calibrate", str(results_dir), "--labels", str(labels)])
    _one_line_error(result, 1, str(labels), fragment)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [(b'{"looks": "st\xffyle"}', "not UTF-8 text"), (DEEP, "nested too deeply")],
)
def test_reweight_synonyms_problems_are_one_line(results_dir: Path, content: bytes, fragment: str) -> None:
    synonyms = results_dir / "syn.json"
    synonyms.write_bytes(content)
    result = CliRunner().invoke(app, ["reweight", str(results_dir), "--synonyms", str(synonyms)])
    _one_line_error(result, 1, fragment)


def test_calibrate_warns_when_labels_match_no_prompt(results_dir: Path) -> None:
    labels = results_dir / "labels.jsonl"
    labels.write_text('{"prompt_id": "q9", "preference": "A"}\n{"prompt_id": "q8", "preference": "B"}\n')
    result = CliRunner().invoke(app, ["calibrate", str(results_dir), "--labels", str(labels)])
    assert result.exit_code == 0, result.output
    assert "warning: none of the 2 labels" in result.output and "matches a prompt_id" in result.output
    labels.write_text('{"prompt_id": "p0", "preference": "A"}\n{"prompt_id": "q8", "preference": "B"}\n')
    result = CliRunner().invoke(app, ["calibrate", str(results_dir), "--labels", str(labels)])
    assert result.exit_code == 0, result.output
    assert "warning: 1 of 2 labels" in result.output and "'q8'" in result.output
    labels.write_text('{"prompt_id": "p0", "preference": "A"}\n')
    result = CliRunner().invoke(app, ["calibrate", str(results_dir), "--labels", str(labels)])
    assert result.exit_code == 0 and "warning" not in result.output


def test_console_script_turns_any_unexpected_error_into_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import novajudge.cli.summarize_cmd as summarize_cmd

    def boom(*_: object, **__: object) -> dict:
        raise KeyError("unexpected\nkey")

    monkeypatch.setattr(summarize_cmd, "summarize", boom)
    archive = tmp_path / "output.tar.gz"
    archive.write_bytes(b"x")
    monkeypatch.setattr(sys, "argv", ["novajudge", "summarize", str(archive), "--out", str(tmp_path / "o")])
    with pytest.raises(SystemExit) as info:
        cli_app.main()
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("error: KeyError: 'unexpected") and "key'" in err  # the newline is folded
