"""Realistic judgements for the results tests, built with the shared archive writer.

Seeded so every number is reproducible; the expected values are computed in the tests from these
objects, independently of `novajudge.results`.
"""

from __future__ import annotations

import io
import json
import random
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from novajudge.local.judge_archive import Criterion, Judgement

CRITERIA = (
    ("Factual accuracy", "scale"),
    ("Completeness", "scale"),
    ("Conciseness", "scale"),
    ("Cites the passage", "binary"),
    ("Clarity", "scale"),
    ("Relevance", "scale"),
)
TIMESTAMP = "2026-11-23T09-00-00.000000"


@dataclass
class Case:
    """Judgements as sent plus the manifest saying which were sent swapped."""

    judgements: list[Judgement]
    manifest: list[dict[str, object]]


def rubric_case(n: int = 80, seed: int = 7, *, weights_sum_to_one: bool = True) -> Case:
    """A rubric run with every label kind, inference errors and swapped rows (odd rows sent BA)."""
    rng = random.Random(seed)
    judgements: list[Judgement] = []
    manifest: list[dict[str, object]] = []
    for i in range(n):
        label = rng.choices(["A>B", "B>A", "A=B", "A=B (bothbad)", None], [30, 45, 10, 5, 10])[0]
        criteria: list[Criterion] = []
        if label is not None:
            chosen = rng.sample(CRITERIA, rng.randint(3, 5))
            raw = [rng.uniform(0.5, 2.0) for _ in chosen]
            total = sum(raw) if weights_sum_to_one else sum(raw) * 0.8
            for (name, ctype), w in zip(chosen, raw, strict=True):
                # vary the spelling so criteria must be merged by normalised name
                written = name.lower() if rng.random() < 0.3 else name
                if ctype == "binary":
                    sa, sb = rng.random() < 0.5, rng.random() < 0.6
                else:
                    sa, sb = rng.randint(1, 5), rng.randint(1, 5)
                criteria.append(
                    Criterion(
                        written,
                        f"How well: {name}",
                        ctype,
                        w / total,
                        sa,
                        sb,
                        f"A on {name} <ok>",
                        f"B on {name} & more",
                    )
                )
        order = "AB" if i % 2 == 0 else "BA"
        judgements.append(
            Judgement(
                prompt=f"Question {i}: what does <b>passage</b> {i} say?",
                response_A=f"Answer from {'A' if order == 'AB' else 'B'} #{i} <script>alert(1)</script>",
                response_B=f"Answer from {'B' if order == 'AB' else 'A'} #{i}",
                label=label,
                criteria=criteria,
                overall_justification=f"Overall for {i}",
            )
        )
        manifest.append({"row": i, "prompt_id": f"q{i // 2}", "order": order, "stand_in": True})
    return Case(judgements, manifest)


def simple(labels: list[str | None], *, criteria: bool = True) -> list[Judgement]:
    """One judgement per label with a one-criterion rubric (scores follow the label)."""
    scores = {"A>B": (5, 2), "B>A": (2, 5), "A=B": (3, 3), "A=B (bothbad)": (1, 1)}
    out = []
    for i, label in enumerate(labels):
        crit = []
        if label is not None and criteria:
            sa, sb = scores[label]
            crit = [Criterion("Accuracy", "Is it right", "scale", 1.0, sa, sb)]
        out.append(Judgement(f"prompt {i}", f"a{i}", f"b{i}", label, crit, f"why {i}"))
    return out


def tar_archive(path: Path, files: dict[str, bytes]) -> Path:
    """A tar.gz holding `files` (name -> bytes), written by hand rather than by the project's writer."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf, engine="pyarrow", index=False)
    return buf.getvalue()


#: Where the judge writes its two outputs inside output.tar.gz (the AWS docs' layout).
JUDGE_RESULTS_NAME = "job/eval_results/results_2026-01-01T00-00-00.json"
JUDGE_DETAILS_NAME = "job/eval_results/details/model/2026-01-01T00-00-00/details_llm_judge|0_2026.parquet"


def judge_output(path: Path, details: pd.DataFrame, results: dict) -> Path:
    """An output.tar.gz laid out as the judge writes it (the results JSON and one details parquet),
    written by hand with pandas + tarfile."""
    results_json = json.dumps({"results": {"all": results}}).encode()
    return tar_archive(path, {JUDGE_RESULTS_NAME: results_json, JUDGE_DETAILS_NAME: parquet_bytes(details)})
