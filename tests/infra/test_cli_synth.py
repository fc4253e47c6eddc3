"""`make synth`'s command, through the pinned CDK CLI: templates for every stack, offline, no credentials.

The in-process fixtures synthesize `build_app()` directly; this proves the user's path (cdk.json →
`npx cdk synth` → `.venv/bin/python app.py`, Lambda bundling included) works with no AWS account.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not (ROOT / "node_modules" / ".bin" / "cdk").exists(), reason="CDK CLI not installed")
def test_cdk_synth_writes_every_template_without_credentials(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        {
            "AWS_EC2_METADATA_DISABLED": "true",  # no instance-metadata credential lookups
            "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
            "CDK_DISABLE_CLI_TELEMETRY": "1",
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        }
    )
    out = tmp_path / "cdk.out"
    proc = subprocess.run(
        ["npx", "--no-install", "cdk", "synth", "--quiet", "--no-notices", "-o", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    templates = {p.name for p in out.glob("*.template.json")}
    assert templates == {
        "NovaJudge-Storage.template.json",
        "NovaJudge-Endpoints.template.json",
        "NovaJudge-Pipeline.template.json",
    }
    pipeline = json.loads((out / "NovaJudge-Pipeline.template.json").read_text())
    functions = [r for r in pipeline["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    ours = [r for r in functions if "novajudge:source" in r.get("Metadata", {})]
    assert len(ours) == 7  # prepare, generate, reduce, start_judge, summarize, cleanup, teardown
    assert len(functions) == 10  # + the teardown Provider's onEvent, isComplete and onTimeout
    # Bundled assets exist in the assembly: each function's code is a real folder with its handler.
    assets = [r["Metadata"]["aws:asset:path"] for r in ours]
    for asset in assets:
        assert (out / asset / "handler.py").is_file() and (out / asset / "novajudge").is_dir()
