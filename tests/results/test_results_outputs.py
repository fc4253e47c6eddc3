"""The four files: stable summary keys, typed details with either parquet engine, figure, HTML, CLI."""

from __future__ import annotations

import base64
import io
import json
import math
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from results_builders import TIMESTAMP, rubric_case, simple
from typer.testing import CliRunner

import novajudge.cli.summarize_cmd  # noqa: F401  (registers the command on the shared app)
from novajudge import parallel
from novajudge.cli.app import app
from novajudge.local.judge_archive import write_judge_archive
from novajudge.results import parse
from novajudge.results import summarize as summarize_module
from novajudge.results.figure import leader_text, needle_angle
from novajudge.results.summarize import summarize
from novajudge.verdicts import CRITERION_COLUMNS, PROMPT_COLUMNS

ROOT = Path(__file__).resolve().parents[2]
#: The four files summarize writes: the contract, written out by hand.
RESULT_FILES = ["details.parquet", "report.html", "report.png", "summary.json"]
STABLE_KEYS = {
    "prompt_level",
    "length",
    "unreadable_rows",
    "schema_version",
    "stand_in",
    "variant",
    "task_key",
    "models",
    "source",
    "manifest_used",
    "orders",
    "headline",
    "verdict",
    "verdict_text",
    "judge",
    "ours",
    "rubric",
    "methods",
    "notes",
    "files",
    "trust",
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("outputs")
    case = rubric_case(50, seed=5)
    archive = write_judge_archive(tmp, "rubric", case.judgements, "run", TIMESTAMP)
    summary = summarize(
        archive,
        tmp / "out",
        "Qwen2.5-1.5B",
        "Qwen2.5-7B",
        manifest=case.manifest,
        stand_in=True,
        max_report_prompts=10,
    )
    return case, archive, summary, tmp / "out"


def test_trust_block_reaches_summary_report_and_headline(run):
    _, _, s, out = run
    trust = s["trust"]
    # 25 prompts sent in both orders: consistency is measured over those whose two verdicts are valid.
    details = pd.read_parquet(out / "details.parquet")
    rows = details[details["kind"] == "prompt"]
    valid = rows[rows["winner"] != "error"].groupby("prompt_id")["order"].nunique()
    assert trust["position"]["consistency"]["measured"] is True
    assert trust["position"]["consistency"]["n"] == int((valid == 2).sum()) > 0
    assert trust["headline"] in s["headline"]
    assert any("counts twice" in note for note in s["notes"])
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "Can we trust the judge?" in page


def test_summary_keys_are_the_documented_ones(run):
    _, _, s, out = run
    assert set(s) == STABLE_KEYS
    assert s["schema_version"] == 1 and s["stand_in"] is True
    assert s["models"] == {"A": "Qwen2.5-1.5B", "B": "Qwen2.5-7B"}
    assert s["orders"] == {"AB": 25, "BA": 25} and s["manifest_used"] is True
    assert s["headline"].startswith("[LOCAL STAND-IN]")
    assert sorted(p.name for p in out.iterdir()) == RESULT_FILES


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")
@pytest.mark.filterwarnings("ignore:.*(fastparquet|infer_string).*")
@pytest.mark.parametrize("engine", ["pyarrow", "fastparquet"])
def test_details_parquet_round_trips_with_either_engine(run, tmp_path, engine):
    case, archive, _, _ = run
    summarize(archive, tmp_path, "A", "B", manifest=case.manifest, parquet_engine=engine)
    for reader in ("pyarrow", "fastparquet"):
        df = pd.read_parquet(tmp_path / "details.parquet", engine=reader)
        assert set(df.columns) == {"kind", *PROMPT_COLUMNS, *CRITERION_COLUMNS}
        prompts, crit = df[df["kind"] == "prompt"], df[df["kind"] == "criterion"]
        assert len(prompts) == 50
        assert len(crit) == sum(len(j.criteria) for j in case.judgements)
        assert str(df["row"].dtype) == "int64"
        assert str(df["norm_A"].dtype) == "float64" and str(df["weighted_score_A"].dtype) == "float64"
        assert prompts["row"].tolist() == list(range(50))
        assert prompts["order"].tolist() == [m["order"] for m in case.manifest]
        assert crit["score_A"].between(0, 5).all()


def test_summarize_works_without_pyarrow(run, tmp_path):
    """The Lambda bundle has fastparquet only: block pyarrow, run everything in a fresh interpreter."""
    case, _, _, _ = run
    script = textwrap.dedent(f"""
        import json, sys
        sys.modules["pyarrow"] = None  # import pyarrow -> ImportError
        sys.path.insert(0, {str(ROOT)!r}); sys.path.insert(0, {str(Path(__file__).parent)!r})
        from results_builders import rubric_case
        from novajudge.local.judge_archive import write_judge_archive
        from novajudge.results.summarize import summarize
        import pandas as pd
        case = rubric_case(50, seed=5)
        archive = write_judge_archive({str(tmp_path)!r}, "rubric", case.judgements, "run", "ts")
        s = summarize(archive, {str(tmp_path / "out")!r}, "A", "B", manifest=case.manifest)
        df = pd.read_parquet({str(tmp_path / "out" / "details.parquet")!r})
        print(json.dumps({{"rows": len(df), "b": s["ours"]["counts"]["b_wins"], "pa": "pyarrow" in sys.modules
                          and sys.modules["pyarrow"] is not None}}))
    """)
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        env={"MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["pa"] is False
    assert result["rows"] == 50 + sum(len(j.criteria) for j in case.judgements)
    assert result["b"] == run[2]["ours"]["counts"]["b_wins"]


def test_png_is_a_real_image(run):
    _, _, _, out = run
    data = (out / "report.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width >= 1200 and height >= 1200  # three rows of panels for the rubric judge


def test_html_is_self_contained_escaped_and_ordered(run):
    case, _, s, out = run
    page = (out / "report.html").read_text()
    assert "LOCAL STAND-IN — not real model/judge output" in page
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert not re.search(r"""(src|href)=['"]?(https?:)?//""", page)
    img = re.search(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert img and base64.b64decode(img.group(1)) == (out / "report.png").read_bytes()
    assert s["headline"].replace("&", "&amp;").split(";")[0] in page
    assert "Showing the 10 most lopsided of 50 judgements" in page
    # per-prompt blocks: |margin| descending, computed here from the criteria (model terms)
    shown = [float(m) for m in re.findall(r"margin A−B ([+-][0-9.]+)</summary>", page)]
    assert len(shown) == 10
    assert [abs(m) for m in shown] == sorted((abs(m) for m in shown), reverse=True)
    margins = []
    for j, m in zip(case.judgements, case.manifest, strict=True):
        if j.label is None:
            continue
        total = sum(c.weight for c in j.criteria)
        score = {"A": 0.0, "B": 0.0}
        for c in j.criteria:
            na = float(bool(c.score_A)) if c.type == "binary" else (c.score_A - 1) / 4
            nb = float(bool(c.score_B)) if c.type == "binary" else (c.score_B - 1) / 4
            score["A" if m["order"] == "AB" else "B"] += c.weight * na / total
            score["B" if m["order"] == "AB" else "A"] += c.weight * nb / total
        margins.append(score["A"] - score["B"])
    top = sorted(margins, key=abs, reverse=True)[:10]
    assert shown == pytest.approx([round(x, 3) for x in top], abs=1e-3)
    assert "Factual accuracy" in page and "Cites the passage" in page  # per-criterion table


def test_figure_helpers_get_direction_and_ties_right():
    assert needle_angle(0.0) == pytest.approx(math.pi)  # 0 % on the left
    assert needle_angle(1.0) == pytest.approx(0.0)  # 100 % on the right
    assert needle_angle(0.75) == pytest.approx(math.pi / 4)
    assert leader_text(5, 5, "small", "big") == "tie (5 each)"
    assert leader_text(3, 7, "small", "big") == "B (big) leads by 4"
    assert leader_text(9, 2, "small", "big") == "A (small) leads by 7"


def test_cli_writes_four_files_and_prints_the_numbers(run, tmp_path):
    case, archive, _, _ = run
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("\n".join(json.dumps(m) for m in case.manifest) + "\n")
    out = tmp_path / "cli"
    result = CliRunner().invoke(
        app,
        [
            "summarize",
            str(archive),
            "--out",
            str(out),
            "--model-a",
            "small",
            "--model-b",
            "big",
            "--manifest",
            str(manifest),
        ],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == RESULT_FILES
    s = json.loads((out / "summary.json").read_text())
    c = s["ours"]["counts"]
    assert f"{c['a_wins']} / {c['b_wins']} / {c['ties']} / {c['bothbad_ties']}" in result.output
    assert f"{100 * s['ours']['win_rate_b_decided']:.1f}%" in result.output
    for name in ("summary.json", "details.parquet", "report.png", "report.html"):
        assert str(out / name) in result.output
    assert s["manifest_used"] is True and s["stand_in"] is False


def test_cli_bad_archive_exits_1_usage_errors_exit_2(tmp_path):
    bad = tmp_path / "output.tar.gz"
    bad.write_bytes(b"nope")
    result = CliRunner().invoke(app, ["summarize", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "output.tar.gz: not a readable tar.gz archive" in result.output
    assert not (tmp_path / "o").exists()
    assert (
        CliRunner().invoke(app, ["summarize", str(tmp_path / "missing.tar.gz"), "--out", "x"]).exit_code == 2
    )
    assert CliRunner().invoke(app, ["summarize", str(bad)]).exit_code == 2  # --out is required
    broken = tmp_path / "m.jsonl"
    broken.write_text("{not json\n")
    archive = write_judge_archive(tmp_path, "rubric", simple(["A>B"]), "r", "ts")
    result = CliRunner().invoke(
        app, ["summarize", str(archive), "--out", str(tmp_path / "o"), "--manifest", str(broken)]
    )
    assert result.exit_code == 1 and "m.jsonl line 1: not valid JSON" in result.output  # names the line


@pytest.mark.skipif(not parallel.can_fork(), reason="needs two cores and fork")
def test_workers_write_the_files_one_process_writes(tmp_path, monkeypatch):
    """A large run reads its slices, analyses its trust and draws its figure in a forked worker:
    the four files are the ones a single process writes (forced here on a small run)."""
    case = rubric_case(n=60, seed=5)
    archive = write_judge_archive(tmp_path, "rubric", case.judgements, "job", TIMESTAMP)
    written = {}
    for cores in (1, 2):
        with monkeypatch.context() as patch:
            patch.setattr(parallel, "cores", lambda cores=cores: cores)
            patch.setattr(summarize_module, "PARALLEL_FROM_ROWS", 0)
            patch.setattr(parse, "ROWS_PER_TASK", 9)
            summarize(archive, tmp_path / str(cores), "m-a", "m-b", manifest=case.manifest)
        written[cores] = {name: (tmp_path / str(cores) / name).read_bytes() for name in RESULT_FILES}
    for name in ("summary.json", "report.png", "report.html"):
        assert written[2][name] == written[1][name], name
    frames = [pd.read_parquet(io.BytesIO(written[cores]["details.parquet"])) for cores in (1, 2)]
    pd.testing.assert_frame_equal(frames[1], frames[0])
    assert json.loads(written[2]["summary.json"])["prompt_level"]["prompts"] == 30  # 60 rows, 2 orders
