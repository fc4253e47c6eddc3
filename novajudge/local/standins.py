"""Stand-ins for what cannot run on a laptop: the two GPU endpoints and the Nova judge job.

Why stand-ins and not canned bodies: the demo must exercise the whole pipeline (generation,
manifest, judge input, recipe, judge archive, summary, report) and the comparison must find
something, so the two "models" answer differently and a local judge scores them with a rubric.
Everything here is deterministic (seeded by prompt and endpoint) and says it is a stand-in: the
chat responses name `novajudge-local-stand-in-*` as their model, every judgement's
`overall_justification` starts with `STAND_IN_JUDGE_TAG`, and the emulator sets
`NOVAJUDGE_STAND_IN=1` so manifests, summaries and the report are labelled too.

- Endpoints: profile "B" (challenger) mostly extracts the answer span from the SQuAD passage and
  quotes the supporting sentence (sometimes it omits the support or quotes the wrong sentence);
  profile "A" (baseline) is, per prompt and seeded, sometimes as good, often right but hedging,
  often quotes an unrelated sentence or stays vague. With `NOVAJUDGE_LOCAL_LLM_URL`
  set (`LocalLLM`), the chat request is forwarded to that OpenAI-compatible server instead.
- Judge: reads the recipe and `llm_judge.jsonl` from the emulated S3 through the job's channels,
  scores each pair on correctness / completeness / clarity (weights 0.5 / 0.3 / 0.2, 1-5) and
  writes the real archive layout with `novajudge.local.judge_archive.write_judge_archive`.
- Faults (for tests and `novajudge demo --fail-*`): an endpoint answering `ModelError`, a judge
  job ending `Failed`, or a corrupt archive.
"""

from __future__ import annotations

import json
import random
import re
import tempfile
import threading
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml

from novajudge.errors import DatasetError, ResultsError
from novajudge.jsonl import read_jsonl_file, text_lines
from novajudge.local.judge_archive import Criterion, Judgement, mirror, write_judge_archive
from novajudge.local.moto_patches import EndpointFailure, TrainingJobRequest

STAND_IN_JUDGE_TAG = "[LOCAL STAND-IN JUDGE]"
STAND_IN_MODEL_PREFIX = "novajudge-local-stand-in"
#: The longest an answer waits for a test's `StandInEndpoints.answer_gate` (a bound, not a timing).
ANSWER_GATE_TIMEOUT_SECONDS = 120.0

Profile = Literal["A", "B"]


@dataclass(frozen=True)
class LocalLLM:
    """An OpenAI-compatible server (llama.cpp, vLLM, Ollama) answering for the stand-in endpoints.

    From the environment: `NOVAJUDGE_LOCAL_LLM_URL` (unset: no forwarding), `NOVAJUDGE_LOCAL_LLM_TIMEOUT`
    (seconds, default 60), and the model names `NOVAJUDGE_LOCAL_LLM_MODEL_A` / `_B`, falling back to
    `NOVAJUDGE_LOCAL_LLM_MODEL` and then `local`.
    """

    url: str
    timeout: float = 60.0
    models: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> LocalLLM | None:
        url = environ.get("NOVAJUDGE_LOCAL_LLM_URL", "").strip()
        if not url:
            return None
        fallback = environ.get("NOVAJUDGE_LOCAL_LLM_MODEL") or "local"
        return cls(
            url=url,
            timeout=float(environ.get("NOVAJUDGE_LOCAL_LLM_TIMEOUT") or 60.0),
            models={w: environ.get(f"NOVAJUDGE_LOCAL_LLM_MODEL_{w}") or fallback for w in ("A", "B")},
        )

    def model(self, which: Profile) -> str:
        return self.models.get(which, "local")


#: Rubric of the stand-in judge: (name, description, weight); weights sum to 1.
RUBRIC: tuple[tuple[str, str, float], ...] = (
    (
        "correctness",
        "The answer matches the passage's answer to the question (SQuAD reference if known).",
        0.5,
    ),
    ("completeness", "The answer states the fact directly and supports it with the passage.", 0.3),
    ("clarity", "The answer is concise and does not hedge.", 0.2),
)
#: |weighted margin| below this is a tie.
TIE_THRESHOLD = 0.05
#: The stand-in judge's deliberate lean toward the response shown first, added to the margin before
#: labelling (the reported weighted scores stay unbiased). Real LLM judges show such a position
#: bias; without one the demo's position-bias analysis would have nothing to find. Below the tie
#: threshold, so identical answers still tie; a one-step difference on one criterion (0.05) flips.
FIRST_POSITION_LEAN = 0.04
_HEDGES = ("i think", "probably", "not entirely clear", "might", "possibly", "not sure", "does not say")
_PROMPT = re.compile(r"Passage:\n(?P<passage>.*?)\n\nQuestion: (?P<question>.*)\Z", re.S)
_WORD = re.compile(r"[a-z0-9]+")
_STOP_WORDS = (
    "the a an of to in on at for by and or is was were what which who whom when where why how did does do "
    "with from as that this it its be are"
)
_STOP = frozenset(_STOP_WORDS.split())


# -- shared text helpers ---------------------------------------------------------------------------


def _seed_rng(*keys: str) -> random.Random:
    return random.Random(zlib.crc32("|".join(keys).encode()))


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def _sentences(passage: str) -> list[str]:
    parts = re.split(r"(?<=[.!?])\s+(?=[A-Z\"'(])", passage.strip())
    return [p.strip() for p in parts if p.strip()]


@dataclass(frozen=True)
class Question:
    """A prompt understood as SQuAD reading comprehension (passage, question, known answers)."""

    passage: str
    question: str
    answers: tuple[str, ...]

    def best_sentence(self) -> str:
        """The sentence holding the reference answer, else the one sharing most words with the question."""
        sentences = _sentences(self.passage) or [self.passage]
        for answer in self.answers:
            for sentence in sentences:
                if answer.lower() in sentence.lower():
                    return sentence
        q = _words(self.question)
        return max(sentences, key=lambda s: (len(q & _words(s)), -sentences.index(s)))

    def other_sentence(self, rng: random.Random) -> str:
        """A sentence that does not hold the answer (what a careless reader quotes)."""
        best = self.best_sentence()
        others = [s for s in _sentences(self.passage) if s != best]
        return rng.choice(others) if others else best


@lru_cache(maxsize=1)
def _squad_answers() -> dict[str, tuple[str, ...]]:
    """Question text -> reference answers of the bundled SQuAD sample (what the stand-ins 'know')."""
    from novajudge.generation.datasets import BUNDLED_SQUAD

    out: dict[str, tuple[str, ...]] = {}
    for _, row in read_jsonl_file(BUNDLED_SQUAD, error=DatasetError):
        out[row["question"].strip()] = tuple((row.get("answers") or {}).get("text") or ())
    return out


def parse_question(prompt: str) -> Question | None:
    """The passage and question of a SQuAD-style prompt (`datasets.squad_prompt`), else None."""
    match = _PROMPT.search(prompt.strip())
    if not match:
        return None
    question = match.group("question").strip()
    return Question(match.group("passage").strip(), question, _squad_answers().get(question, ()))


# -- endpoints -------------------------------------------------------------------------------------


@dataclass
class EndpointFaults:
    """Injected endpoint failures: every call (`rate` 1.0) or a seeded share of calls fails."""

    rate: float = 1.0
    code: str = "ModelError"
    original_status: int = 400  # 4xx: not retried by the generator, so a failing run fails fast
    message: str = "stand-in endpoint failure injected for testing"


def stand_in_answer(profile: Profile, prompt: str, seed: int = 0) -> str:
    """The deterministic answer of a stand-in model with `profile` to `prompt`."""
    rng = _seed_rng(str(seed), profile, prompt)
    q = parse_question(prompt)
    if q is None:
        head = prompt.strip().splitlines()[0][:120] if prompt.strip() else "this request"
        if profile == "B":
            return f'Here is a direct answer to "{head}": it depends on the details given above.'
        return "I am not sure; could you give more details?"
    best = q.best_sentence()
    answer = q.answers[0] if q.answers else best.rstrip(".")
    good = f'{answer[0].upper()}{answer[1:]}. The passage says: "{best}"'
    roll = rng.random()
    if profile == "B":
        if roll < 0.75:
            return good
        if roll < 0.88:  # now and then the strong model forgets to support its answer
            return f"{answer[0].upper()}{answer[1:]}."
        return f'The answer is in this sentence: "{q.other_sentence(rng)}"'  # confidently wrong
    if roll < 0.2:
        return good
    if roll < 0.45:
        return f"I think it is probably {answer}, but the passage is not entirely clear."
    if roll < 0.8:
        return f"According to the passage, {q.other_sentence(rng)}"
    return "The passage describes the topic in general terms but does not say this directly."


def chat_completion(content: str, *, model: str, prompt: str, max_tokens: int | None) -> dict[str, Any]:
    """A TGI/OpenAI chat completion body, truncated to `max_tokens` (~4 characters a token)."""
    finish = "stop"
    if max_tokens is not None and len(content) > 4 * max_tokens:
        content, finish = content[: 4 * max_tokens], "length"
    return {
        "object": "chat.completion",
        "id": "",
        "created": 0,
        "model": model,
        "system_fingerprint": f"{STAND_IN_MODEL_PREFIX} (not a real model)",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "logprobs": None,
                "finish_reason": finish,
            }
        ],
        "usage": {
            "prompt_tokens": max(1, len(prompt) // 4),
            "completion_tokens": max(1, len(content) // 4),
            "total_tokens": max(1, len(prompt) // 4) + max(1, len(content) // 4),
        },
    }


@dataclass
class StandInEndpoints:
    """Answers `invoke_endpoint` per endpoint name; registered as `moto_patches.registry.endpoint_handler`."""

    profiles: dict[str, Profile]
    seed: int = 0
    faults: dict[str, EndpointFaults] = field(default_factory=dict)
    local_llm: LocalLLM | None = None
    calls: dict[str, int] = field(default_factory=dict)
    #: Tests that must catch a run while it generates: when set, every answer waits until the test
    #: sets this event (at most `ANSWER_GATE_TIMEOUT_SECONDS`, so a forgotten gate cannot hang a run).
    answer_gate: threading.Event | None = None
    #: The emulator answers from several threads: `+=` on `calls` could lose a count without it.
    _counting: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def profile(self, endpoint: str) -> Profile:
        if endpoint in self.profiles:
            return self.profiles[endpoint]
        return "A" if endpoint.lower().endswith("-a") else "B"

    def __call__(self, endpoint: str, body: bytes, content_type: str) -> tuple[bytes, str]:
        with self._counting:
            self.calls[endpoint] = self.calls.get(endpoint, 0) + 1
        if self.answer_gate is not None:
            self.answer_gate.wait(ANSWER_GATE_TIMEOUT_SECONDS)
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            raise EndpointFailure("ModelError", "request body is not JSON", original_status=400) from None
        messages = request.get("messages")
        if not isinstance(messages, list) or not messages:
            raise EndpointFailure(
                "ModelError", "stand-in endpoints take the chat payload ('messages')", original_status=422
            )
        prompt = str(messages[-1].get("content", ""))
        fault = self.faults.get(endpoint)
        if fault and (
            fault.rate >= 1.0 or _seed_rng(str(self.seed), "fault", endpoint, prompt).random() < fault.rate
        ):
            raise EndpointFailure(
                fault.code, f"{fault.message} ({endpoint})", original_status=fault.original_status
            )
        which = self.profile(endpoint)
        if self.local_llm:
            return self._forward(self.local_llm, which, request), "application/json"
        content = stand_in_answer(which, prompt, self.seed)
        out = chat_completion(
            content,
            model=f"{STAND_IN_MODEL_PREFIX}-{which.lower()}",
            prompt=prompt,
            max_tokens=request.get("max_tokens"),
        )
        return json.dumps(out).encode(), "application/json"

    @staticmethod
    def _forward(llm: LocalLLM, which: Profile, request: dict[str, Any]) -> bytes:
        """Send the chat request to the local OpenAI-compatible server."""
        payload = {
            k: v for k, v in request.items() if k in {"messages", "max_tokens", "temperature", "top_p"}
        }
        payload["model"] = llm.model(which)
        url = f"{llm.url.rstrip('/')}/v1/chat/completions"
        req = urllib.request.Request(
            url,
            data=json.dumps(payload).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=llm.timeout) as resp:
                return resp.read()
        except urllib.error.HTTPError as exc:
            raise EndpointFailure(
                "ModelError", f"local LLM at {url}: HTTP {exc.code}", original_status=exc.code
            ) from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise EndpointFailure(
                "ModelError", f"local LLM at {url} unreachable: {exc}", original_status=503
            ) from None


# -- judge -----------------------------------------------------------------------------------------


def _score_response(response: str, q: Question | None) -> dict[str, tuple[int, str]]:
    """criterion -> (1-5 score, justification) for one response; deterministic, position-free."""
    text = response.strip()
    lower = text.lower()
    hedges = [h for h in _HEDGES if h in lower]
    if not text:
        return {name: (1, "Empty response.") for name, _, _ in RUBRIC}
    if q is not None and q.answers:
        hit = next((a for a in q.answers if a.lower() in lower), None)
        if hit:
            correct = (5, f"Contains the reference answer {hit!r}.")
        else:
            ref_words = _words(" ".join(q.answers))
            overlap = len(ref_words & _words(text)) / max(1, len(ref_words))
            correct = (
                (3, f"Partly overlaps the reference answer {q.answers[0]!r}.")
                if overlap >= 0.5
                else (1, f"Does not give the reference answer {q.answers[0]!r}.")
            )
    elif q is not None:
        overlap = len(_words(q.best_sentence()) & _words(text)) / max(1, len(_words(q.best_sentence())))
        correct = (
            (4, "Agrees with the passage sentence that best matches the question.")
            if overlap >= 0.5
            else (2, "Does not reflect the passage sentence that best matches the question.")
        )
    else:
        correct = (3, "No reference available; correctness not assessed beyond plausibility.")
    supported = '"' in text or "the passage says" in lower
    if correct[0] >= 4 and supported:
        complete = (5, "States the answer and quotes the supporting passage.")
    elif correct[0] >= 4:
        complete = (4, "States the answer without supporting evidence.")
    elif correct[0] == 3:
        complete = (3, "Gestures at the answer without stating it plainly.")
    else:
        complete = (2 if supported else 1, "Does not answer the question that was asked.")
    n_words = len(text.split())
    if hedges:
        clarity = (2, f"Hedges ({', '.join(hedges)}).")
    elif n_words > 120:
        clarity = (3, f"Long-winded ({n_words} words).")
    else:
        clarity = (5, "Direct and concise.")
    return {"correctness": correct, "completeness": complete, "clarity": clarity}


def judge_pair(prompt: str, response_a: str, response_b: str) -> Judgement:
    """One rubric judgement by the stand-in judge (labels from the weighted margin, tie threshold)."""
    q = parse_question(prompt)
    sa, sb = _score_response(response_a, q), _score_response(response_b, q)
    criteria = [
        Criterion(
            name=name,
            description=desc,
            type="scale",
            weight=weight,
            score_A=sa[name][0],
            score_B=sb[name][0],
            justification_A=sa[name][1],
            justification_B=sb[name][1],
        )
        for name, desc, weight in RUBRIC
    ]
    wa = sum(c.weight * c.normalised(c.score_A) for c in criteria)
    wb = sum(c.weight * c.normalised(c.score_B) for c in criteria)
    margin = wa - wb + FIRST_POSITION_LEAN
    if abs(margin) < TIE_THRESHOLD:
        label = "A=B" if min(wa, wb) >= 0.5 else "A=B (bothbad)"
    else:
        label = "A>B" if margin > 0 else "B>A"
    verdict = {
        "A>B": "Response A is better",
        "B>A": "Response B is better",
        "A=B": "Both responses are comparably good",
        "A=B (bothbad)": "Both responses are poor",
    }[label]
    return Judgement(
        prompt=prompt,
        response_A=response_a,
        response_B=response_b,
        label=label,
        criteria=criteria,
        overall_justification=(
            f"{STAND_IN_JUDGE_TAG} deterministic local rubric, not Amazon Nova. "
            f"{verdict} (weighted {wa:.3f} vs {wb:.3f}, leaning {FIRST_POSITION_LEAN} toward the "
            f"first-shown response, tie below {TIE_THRESHOLD})."
        ),
    )


@dataclass
class JudgeFaults:
    """Injected judge outcomes: a `Failed` job with `reason`, or a corrupt output archive."""

    fail_reason: str | None = None
    corrupt_archive: bool = False


def _split_s3(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


@dataclass
class StandInJudge:
    """The judge job's work, done at `create_training_job`; registered as the training-job hook."""

    s3_factory: Callable[[], Any]
    faults: JudgeFaults = field(default_factory=JudgeFaults)
    seed: int = 0
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    jobs: list[str] = field(default_factory=list)

    def __call__(self, job: TrainingJobRequest) -> str | None:
        self.jobs.append(job.name)
        if self.faults.fail_reason:
            return f"AlgorithmError: {STAND_IN_JUDGE_TAG} {self.faults.fail_reason}"
        s3 = self.s3_factory()
        channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in job.input_data_config}
        missing = {"recipe", "train"} - set(channels)
        if missing:
            return f"ClientError: {STAND_IN_JUDGE_TAG} input channel(s) {sorted(missing)} missing"
        recipe_key, recipe = self._read_one(s3, channels["recipe"], (".yaml", ".yml"))
        if recipe is None:
            return f"ClientError: {STAND_IN_JUDGE_TAG} no recipe YAML under {channels['recipe']}"
        spec = yaml.safe_load(recipe)
        task = (spec.get("evaluation") or {}).get("task")
        variant = {"rubric_llm_judge": "rubric", "llm_judge": "binary"}.get(task)
        if variant is None:
            return f"ClientError: {STAND_IN_JUDGE_TAG} recipe {recipe_key}: unsupported task {task!r}"
        run_name = (spec.get("run") or {}).get("name") or job.name
        _, data = self._read_one(s3, channels["train"], ("llm_judge.jsonl",))
        if data is None:
            return f"ClientError: {STAND_IN_JUDGE_TAG} no llm_judge.jsonl under {channels['train']}"
        # The judge input is JSON Lines: lines end at "\n" only (novajudge.jsonl), never at U+2028.
        judgements = [
            self._judge_line(line)
            for line in text_lines(data.encode("utf-8"), channels["train"], error=ResultsError)
            if line.strip()
        ]
        if variant == "binary":
            for j in judgements:
                if j.label is not None:
                    j.forward_output, j.backward_output = f"[[{j.label}]]", f"[[{mirror(j.label)}]]"
                    j.criteria = []
        out_bucket, out_prefix = _split_s3(job.output_data_config["S3OutputPath"])
        key = f"{out_prefix.rstrip('/')}/{job.name}/output/output.tar.gz".lstrip("/")
        if self.faults.corrupt_archive:
            s3.put_object(Bucket=out_bucket, Key=key, Body=b"not a gzip archive: corrupted on purpose")
            return None
        with tempfile.TemporaryDirectory(prefix="novajudge-standin-judge-") as tmp:
            archive = write_judge_archive(
                Path(tmp) / "output.tar.gz",
                variant,
                judgements,
                run_name,
                self.clock().strftime("%Y%m%d_%H%M%S"),
                judge_model=f"{STAND_IN_MODEL_PREFIX}-judge",
                seed=self.seed,
            )
            s3.upload_file(str(archive), out_bucket, key)
        return None

    @staticmethod
    def _judge_line(line: str) -> Judgement:
        try:
            record = json.loads(line)
            prompt, a, b = record["prompt"], record["response_A"], record["response_B"]
        except (ValueError, KeyError, TypeError):
            return Judgement(
                prompt="",
                response_A="",
                response_B="",
                label=None,
                overall_justification=f"{STAND_IN_JUDGE_TAG} malformed input line",
            )
        if not str(a).strip() or not str(b).strip():
            return Judgement(
                prompt=prompt,
                response_A=a,
                response_B=b,
                label=None,
                overall_justification=f"{STAND_IN_JUDGE_TAG} empty response: no judgement",
            )
        return judge_pair(prompt, a, b)

    @staticmethod
    def _read_one(s3: Any, uri: str, suffixes: tuple[str, ...]) -> tuple[str, str | None]:
        """The first object under `uri` (a key or a prefix) whose name ends with one of `suffixes`."""
        bucket, key = _split_s3(uri)
        if key.endswith(suffixes):
            return key, s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
        listing = s3.list_objects_v2(Bucket=bucket, Prefix=key)
        for obj in sorted(listing.get("Contents", []), key=lambda o: o["Key"]):
            if obj["Key"].endswith(suffixes):
                return obj["Key"], s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().decode("utf-8")
        return key, None
