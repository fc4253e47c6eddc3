"""Where a deployment keeps things, in one place: bucket prefixes, the objects of one run, the
result files, SageMaker's training-job log group and the stacks' output keys.

The steps, the operating commands, the local emulator and the stacks (IAM grants) all take these
names from here, so the S3 layout, the judge's channels, the permissions and the CLI's look-ups
cannot drift apart (docs/design.md, "Objects of one run"). This module sits at the bottom of the
package: it imports nothing from it and touches no AWS API.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Literal

#: Every run writes under `runs/<run_id>/`; the functions and the judge role are limited to it.
RUNS_PREFIX = "runs/"
#: Below `runs/<run_id>/`: the chunk lists and chunk items of the generation Map (the state
#: machine's item reader may read only these).
CHUNKS_SEGMENT = "generation/chunks/"
#: Users upload their JSONL datasets here; the generate function may read nothing else they own.
DATASETS_PREFIX = "datasets/"
#: Where SageMaker writes training-job logs (fixed name, one group per account and region).
TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
#: The stacks' CloudFormation outputs (docs/design.md, "Stacks and names"): the stacks write them,
#: the operating commands and the local emulator find the deployment's resources by them.
OUTPUT_BUCKET = "BucketName"
#: The access-log bucket: retained by `cdk destroy` (late log deliveries), deleted by the user later.
OUTPUT_ACCESS_LOG_BUCKET = "AccessLogBucketName"
OUTPUT_JUDGE_ROLE = "JudgeRoleArn"
OUTPUT_STATE_MACHINE = "StateMachineArn"
#: Tag on every judge training job: its value is the pipeline stack's name. The stop grants (state
#: machine, cleanup function) are conditioned on it, so a deployment stops only its own jobs.
JUDGE_JOB_TAG = "novajudge:stack"


def endpoint_output(which: Literal["A", "B"], what: Literal["Name", "Arn"]) -> str:
    """`EndpointAName`, `EndpointBArn`, ...: the endpoints stack's output of model `which`."""
    return f"Endpoint{which}{what}"


#: SageMaker endpoint names: at most 63 characters.
ENDPOINT_NAME_MAX = 63


def run_endpoint_name(prefix: str, run_id: str, which: Literal["A", "B"]) -> str:
    """`<prefix>-<md5(run_id)>-a`: the endpoint of model `which` that lives for run `run_id` only
    (`endpoints_mode=per_run`).

    MD5 in hex (32 characters, not a security use) because the state machine builds the same name
    natively with `States.Hash($.run_id, 'MD5')` before any Lambda runs, and ASL has no substring
    function: a 24-character stack prefix + 32 + 3 still fits SageMaker's 63. The prefix (the stack
    prefix, lower case) keeps the names, and so the IAM grants on them, to this deployment.
    """
    name = f"{prefix}-{hashlib.md5(run_id.encode()).hexdigest()}-{which.lower()}"
    if len(name) > ENDPOINT_NAME_MAX:
        raise ValueError(f"endpoint name prefix {prefix!r} is too long for per-run endpoint names")
    return name


#: A user dataset: `s3://<bucket>/<key>.jsonl`.
S3_DATASET_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>\S+\.jsonl)$")


@dataclass(frozen=True)
class ResultFile:
    """One file summarize publishes: its name, its key in the state's `results`, its content type."""

    name: str
    state_key: str
    content_type: str


#: What summarize writes under `runs/<run_id>/results/`, in download order.
RESULTS: tuple[ResultFile, ...] = (
    ResultFile("summary.json", "summary_uri", "application/json"),
    ResultFile("details.parquet", "details_uri", "application/vnd.apache.parquet"),
    ResultFile("report.png", "figure_uri", "image/png"),
    ResultFile("report.html", "report_uri", "text/html; charset=utf-8"),
)
RESULT_FILES: tuple[str, ...] = tuple(result.name for result in RESULTS)


def dataset_location(uri: str | None) -> tuple[str, str] | None:
    """(bucket, key) of a user dataset URI, or None when `uri` is not `s3://<bucket>/<key>.jsonl`."""
    match = S3_DATASET_URI.match(uri or "")
    return (match["bucket"], match["key"]) if match else None


@dataclass(frozen=True)
class RunLayout:
    """Keys and URIs of the objects of run `run_id` in `bucket`."""

    bucket: str
    run_id: str

    @property
    def prefix(self) -> str:
        return f"{RUNS_PREFIX}{self.run_id}/"

    @property
    def request_key(self) -> str:
        return f"{self.prefix}request.json"

    @property
    def judge_input_prefix(self) -> str:
        return f"{self.prefix}input/"

    @property
    def judge_input_key(self) -> str:
        return f"{self.judge_input_prefix}llm_judge.jsonl"

    @property
    def manifest_key(self) -> str:
        return f"{self.prefix}generation/manifest.jsonl"

    @property
    def generation_summary_key(self) -> str:
        return f"{self.prefix}generation/summary.json"

    @property
    def generation_plan_key(self) -> str:
        """What prepare decided for the whole run: item order, prompts never sent, limits."""
        return f"{self.prefix}generation/plan.json"

    def chunks_prefix(self, attempt: str) -> str:
        """The items one execution (`attempt` = its name) hands to the Map, one object per chunk."""
        return f"{self.prefix}{CHUNKS_SEGMENT}{attempt}/"

    def chunk_list_key(self, attempt: str) -> str:
        """The Map's ItemReader source: a JSON array of chunk descriptors (moto and Step Functions
        both read JSON arrays; JSON Lines is not an ItemReader input moto knows)."""
        return f"{self.chunks_prefix(attempt)}chunks.json"

    def chunk_items_key(self, attempt: str, index: int) -> str:
        return f"{self.chunks_prefix(attempt)}chunk-{index:05d}.json"

    @property
    def outcomes_prefix(self) -> str:
        """Every chunk outcome of every execution of the run (resume keeps the earlier ones)."""
        return f"{self.prefix}generation/outcomes/"

    def chunk_outcome_key(self, attempt: str, index: int) -> str:
        return f"{self.outcomes_prefix}{attempt}/chunk-{index:05d}.json"

    @property
    def recipe_prefix(self) -> str:
        return f"{self.prefix}recipe/"

    def recipe_key(self, file_name: str) -> str:
        return f"{self.recipe_prefix}{file_name}"

    @property
    def judge_output_prefix(self) -> str:
        return f"{self.prefix}judge-output/"

    def judge_job_prefix(self, job_name: str) -> str:
        return f"{self.judge_output_prefix}{job_name}/"

    def judge_archive_key(self, job_name: str) -> str:
        return f"{self.judge_job_prefix(job_name)}output/output.tar.gz"

    @property
    def results_prefix(self) -> str:
        return f"{self.prefix}results/"

    def results_key(self, file_name: str) -> str:
        return f"{self.results_prefix}{file_name}"

    @property
    def cleanup_key(self) -> str:
        """What the cleanup (EventBridge rule or `novajudge stop`) found and stopped for this run."""
        return f"{self.prefix}cleanup.json"

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"
