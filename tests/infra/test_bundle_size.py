"""The Lambda bundles, really built: sizes under Lambda's limit, the right wheels, code that imports.

`cdk synth` with bundling on builds the four bundles through `LocalBundler` (pip downloads from
PyPI the first time, then `.build/lambda-deps/` serves them). The unzipped size of each asset is
what Lambda counts against its 250 MB limit (layers included; we use none).

Lambda runs the Python of `pipeline_stack.RUNTIME`, chosen as one whose interpreter the test
machines have (python_function.IMPORT_TESTED_PYTHON). The bundles are checked statically (extension
modules for that CPython on x86_64, every declared dependency present, no SageMaker Python SDK) and
then imported by an interpreter of exactly that major.minor, isolated so it sees only the bundle plus
boto3 (which the Lambda runtime provides): that proves stripping kept what imports need, and that
summarize writes parquet without pyarrow. On CI a missing interpreter fails instead of skipping.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from email.parser import Parser
from pathlib import Path
from typing import Any  # noqa: F401

import pytest
from infra_synth import ROOT, synth_app
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from stacks import pipeline_stack
from stacks.constructs.python_function import DEAD_DIRS, LambdaBundle, python_version

#: Lambda's limit on the unzipped deployment package (250 MB as AWS counts it: 250 * 2**20 bytes).
LAMBDA_UNZIPPED_LIMIT = 250 * 2**20
NAMES = ("prepare", "generate", "reduce", "start_judge", "summarize", "cleanup", "teardown")
#: Provided by the Lambda Python runtime itself (/var/runtime), not needed in the bundle.
RUNTIME_PROVIDED = {"boto3", "botocore", "s3transfer", "jmespath", "urllib3", "python-dateutil", "six"}
LAMBDA_PYTHON = python_version(pipeline_stack.RUNTIME)
CPYTHON_TAG = f"cpython-{LAMBDA_PYTHON.replace('.', '')}-x86_64-linux-gnu"
#: The SageMaker Python SDK is a development dependency (the conformance tests' oracle): never bundled.
SDK_PACKAGES = ("sagemaker", "sagemaker_core", "omegaconf")


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The five function assets of a real `cdk synth` with bundling on, by function name."""
    outdir = tmp_path_factory.mktemp("cdk.out.bundled")
    synth = synth_app(outdir, **{"aws:cdk:bundling-stacks": ["**"]})
    template = synth.templates["pipeline"]
    found: dict[str, Path] = {}
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::Lambda::Function" or "novajudge:source" not in resource.get(
            "Metadata", {}
        ):
            continue
        name = resource["Metadata"]["novajudge:source"].removeprefix("lambdas/")
        key = resource["Properties"]["Code"]["S3Key"]  # "<asset hash>.zip"
        found[name] = outdir / f"asset.{key.removesuffix('.zip')}"
        assert found[name].is_dir(), found[name]
    assert set(found) == set(NAMES)
    return found


def directory_size(root: Path) -> int:
    """Bytes of all regular files below `root` (what Lambda counts against its 250 MB limit)."""
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def _sizes_report(bundles: dict[str, Path]) -> dict[str, float]:
    return {name: round(directory_size(path) / 2**20, 1) for name, path in bundles.items()}


def test_each_bundle_fits_lambda(bundles: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    sizes = _sizes_report(bundles)
    with capsys.disabled():
        print("\nunzipped bundle sizes (MiB, limit 250):", json.dumps(sizes))
    for name, path in bundles.items():
        assert directory_size(path) < LAMBDA_UNZIPPED_LIMIT, f"{name}: {sizes[name]} MiB"
    assert sizes["summarize"] > sizes["generate"]  # pandas + matplotlib really are in there


def test_bundle_layout(bundles: dict[str, Path]) -> None:
    for name, path in bundles.items():
        assert (path / "handler.py").read_bytes() == (ROOT / "lambdas" / name / "handler.py").read_bytes()
        assert (path / "novajudge" / "__init__.py").is_file()
        assert (path / "novajudge" / "config.py").is_file()
        assert list((path / "novajudge" / "data").glob("*.jsonl")), "the bundled SQuAD sample"
        assert sorted(p.name for p in (path / "recipes").glob("*.yaml")) == sorted(
            p.name for p in (ROOT / "recipes").glob("*.yaml")
        )
        assert not (path / "novajudge" / "cli").exists() and not (path / "novajudge" / "local").exists()
        # The stand-in judge's archive writer lives in novajudge/local/: no trace of it ships.
        shipped = {p.relative_to(path).as_posix(): p for p in (path / "novajudge").rglob("*.py")}
        assert not [p for p in shipped if p.endswith(("archive.py", "judge_archive.py"))], sorted(shipped)
        assert not [p for p, f in shipped.items() if "write_judge_archive" in f.read_text()]
        assert f"novajudge/steps/{name}.py" in shipped and "novajudge/layout.py" in shipped
        assert not (path / "bin").exists()
        dead = [p for p in path.rglob("*") if p.name in DEAD_DIRS or p.suffix == ".pyc"]
        assert not dead, dead[:5]
        for package in ("pydantic", "pydantic_core", "yaml", "aws_lambda_powertools", "aws_xray_sdk"):
            assert (path / package / "__init__.py").is_file(), (name, package)
        for package in SDK_PACKAGES:
            assert not (path / package).exists(), (name, package)
            assert not list(path.glob(f"{package}-*.dist-info")), (name, package)


def _extension_tags(root: Path) -> set[str]:
    """`cpython-313-x86_64-linux-gnu`-style tags of every compiled module in the bundle."""
    tags = set()
    for so in root.rglob("*.so"):
        match = re.search(r"\.(cpython-\d+[a-z]*-[\w]+-linux-gnu)\.so$", so.name)
        if match:
            tags.add(match.group(1))
    return tags


def test_compiled_modules_are_for_lambdas_python_and_cpu(bundles: dict[str, Path]) -> None:
    for name, path in bundles.items():
        assert _extension_tags(path) == {CPYTHON_TAG}, name


def test_summarize_has_pandas_matplotlib_fastparquet_and_not_pyarrow(bundles: dict[str, Path]) -> None:
    path = bundles["summarize"]
    for package, compiled in (
        ("pandas", "pandas/_libs"),
        ("numpy", "numpy/_core"),
        ("matplotlib", "matplotlib"),
        ("fastparquet", "fastparquet"),
    ):
        assert (path / package / "__init__.py").is_file(), package
        assert list((path / compiled).glob(f"*.{CPYTHON_TAG}.so")), package
    assert not (path / "pyarrow").exists()
    assert not list(path.glob("pyarrow-*.dist-info"))
    for name in ("generate", "start_judge", "cleanup", "teardown"):
        assert not (bundles[name] / "pandas").exists(), f"{name} does not need pandas"


def _installed(root: Path) -> dict[str, tuple[Version, Path]]:
    found = {}
    for dist in root.glob("*.dist-info"):
        meta = Parser().parsestr((dist / "METADATA").read_text(encoding="utf-8"))
        found[canonicalize_name(meta["Name"])] = (Version(meta["Version"]), dist)
    return found


def test_every_declared_dependency_is_in_the_bundle(bundles: dict[str, Path]) -> None:
    """What each wheel requires on Lambda (its Python, Linux x86_64) is present, in a matching version."""
    env = {
        **default_environment(),
        "python_version": LAMBDA_PYTHON,
        "python_full_version": f"{LAMBDA_PYTHON}.0",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": "x86_64",
        "os_name": "posix",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
    }
    for name, path in bundles.items():
        installed = _installed(path)
        pins = [
            Requirement(line)
            for line in (ROOT / "lambdas" / name / "requirements.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")
        ]
        for pin in pins:
            assert canonicalize_name(pin.name) in installed, (name, pin.name)
            assert installed[canonicalize_name(pin.name)][0] in pin.specifier, (name, str(pin))
        for dist_name, (_, dist) in installed.items():
            meta = Parser().parsestr((dist / "METADATA").read_text(encoding="utf-8"))
            for line in meta.get_all("Requires-Dist") or []:
                req = Requirement(line)
                if req.marker is not None and not req.marker.evaluate({**env, "extra": ""}):
                    continue
                key = canonicalize_name(req.name)
                if key in RUNTIME_PROVIDED and key not in installed:
                    continue
                assert key in installed, f"{name}: {dist_name} requires {line}, not in the bundle"
                assert req.specifier.contains(installed[key][0], prereleases=True), (name, dist_name, line)


# -- a real import, with an interpreter this machine has --------------------------------------------------


def _local_interpreter() -> tuple[str, str] | None:
    """(version, path) of a CPython of exactly Lambda's major.minor (`LAMBDA_PYTHON`)."""
    candidates = [shutil.which(f"python{LAMBDA_PYTHON}")]
    pyenv = Path.home() / ".pyenv" / "versions"
    if pyenv.is_dir():
        candidates += [
            str(p / "bin" / "python3") for p in sorted(pyenv.glob(f"{LAMBDA_PYTHON}.*"), reverse=True)
        ]
    for candidate in candidates:
        if not candidate or not Path(candidate).exists():
            continue
        out = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode == 0 and out.stdout.strip() == LAMBDA_PYTHON:
            return out.stdout.strip(), candidate
    return None


@pytest.fixture(scope="module")
def local_python() -> Iterator[tuple[str, str]]:
    found = _local_interpreter()
    if found is None:
        message = f"no CPython {LAMBDA_PYTHON} interpreter (Lambda's runtime): the import check needs one"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must prove what Lambda runs")
        pytest.skip(message)
    yield found


def test_the_import_check_runs_lambdas_python(local_python: tuple[str, str]) -> None:
    version, _path = local_python
    assert version == LAMBDA_PYTHON == pipeline_stack.RUNTIME.name.removeprefix("python")


def _runtime_boto3(python: str) -> Path:
    """boto3 for `python`, standing in for what Lambda's runtime provides (cached like the deps)."""
    target = ROOT / ".build" / f"lambda-runtime-py{python}"
    if not (target / "boto3").is_dir():
        pin = next(
            line
            for line in (ROOT / "requirements.txt").read_text().splitlines()
            if line.startswith("boto3==")
        )
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        command += [
            "--no-compile",
            "--only-binary=:all:",
            "--python-version",
            python,
            "--implementation",
            "cp",
        ]
        command += ["--platform", "manylinux_2_28_x86_64", "--platform", "manylinux2014_x86_64"]
        subprocess.run([*command, "--target", str(target), pin], check=True)
    return target


IMPORT_CHECK = r"""
import importlib, importlib.util, json, sys
bundle, runtime, name = sys.argv[1:4]
sys.path[:0] = [bundle, runtime]
import handler
assert callable(handler.handler)
assert handler.__file__.startswith(bundle), handler.__file__
step = importlib.import_module("novajudge.steps." + name)
assert step.__file__.startswith(bundle), step.__file__
import novajudge.config, novajudge.judge.catalog
assert importlib.util.find_spec("novajudge.local") is None, "novajudge.local must not ship"
assert sys.version_info[:2] == tuple(int(p) for p in sys.argv[4].split(".")), sys.version
for sdk in ("sagemaker", "sagemaker_core", "omegaconf"):
    try:
        importlib.import_module(sdk)
    except ModuleNotFoundError:
        pass
    else:
        raise SystemExit(f"{sdk} must not be importable from the bundle")
checked = ["handler", "novajudge.steps." + name, "novajudge.config", "no novajudge.local", "no SageMaker SDK"]
if name == "summarize":
    import pandas, matplotlib, fastparquet
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("pyarrow must not be in the summarize bundle")
    import os, tempfile
    with tempfile.TemporaryDirectory() as tmp:
        df = pandas.DataFrame({"row": [0, 1], "label": ["A>B", "B>A"], "score": [0.5, 0.25]})
        path = os.path.join(tmp, "d.parquet")
        df.to_parquet(path, engine="auto")
        back = pandas.read_parquet(path, engine="auto")
        # Values, not dtypes: pandas 3 reads strings back as its own str dtype.
        assert back.to_dict("list") == df.to_dict("list"), back
        fig, ax = plt.subplots()
        ax.bar(["A", "B"], [1, 2])
        fig.savefig(os.path.join(tmp, "f.png"))
    try:
        importlib.import_module("novajudge.results.summarize")
        checked.append("novajudge.results.summarize")
    except ModuleNotFoundError as exc:
        if exc.name not in ("novajudge.results", "novajudge.results.summarize"):
            raise
    checked += ["pandas", "matplotlib", "fastparquet", "parquet round trip without pyarrow"]
print(json.dumps(checked))
"""


@pytest.mark.parametrize("name", NAMES)
def test_bundle_imports_in_an_isolated_interpreter(
    name: str, local_python: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    version, python = local_python
    assert version == LAMBDA_PYTHON
    bundle = LambdaBundle(name, python=version).build(tmp_path / name)
    runtime = _runtime_boto3(version)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update({"MPLBACKEND": "Agg", "MPLCONFIGDIR": str(tmp_path / "mpl"), "POWERTOOLS_TRACE_DISABLED": "1"})
    result = subprocess.run(
        [python, "-I", "-S", "-c", IMPORT_CHECK, str(bundle), str(runtime), name, LAMBDA_PYTHON],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with capsys.disabled():
        print(f"\n{name} bundle (Python {version}) imports:", result.stdout.strip())


# -- the bundler's identity -----------------------------------------------------------------------------


def _fake_project(root: Path) -> None:
    (root / "lambdas" / "fn").mkdir(parents=True)
    (root / "lambdas" / "fn" / "requirements.txt").write_text("PyYAML==6.0.3\n")
    (root / "lambdas" / "fn" / "handler.py").write_text("def handler(event, context):\n    return event\n")
    (root / "novajudge" / "cli").mkdir(parents=True)
    (root / "novajudge" / "__init__.py").write_text("")
    (root / "novajudge" / "cli" / "app.py").write_text("import typer\n")
    (root / "novajudge" / "local").mkdir()
    (root / "novajudge" / "local" / "judge_archive.py").write_text("import pandas\n")
    (root / "recipes").mkdir()
    (root / "recipes" / "r.yaml").write_text("run: {}\n")


def test_asset_hash_follows_every_input(tmp_path: Path) -> None:
    _fake_project(tmp_path)
    bundle = LambdaBundle("fn", python="3.14", root=tmp_path)
    first = bundle.asset_hash()
    assert LambdaBundle("fn", python="3.14", root=tmp_path).asset_hash() == first  # stable
    assert LambdaBundle("fn", python="3.13", root=tmp_path).asset_hash() != first
    changes: list[tuple[Path, str]] = [
        (tmp_path / "lambdas" / "fn" / "handler.py", "def handler(event, context):\n    return 1\n"),
        (tmp_path / "novajudge" / "__init__.py", "X = 1\n"),
        (tmp_path / "recipes" / "r.yaml", "run: {name: x}\n"),
        (tmp_path / "lambdas" / "fn" / "requirements.txt", "PyYAML==6.0.2\n"),
    ]
    seen = {first}
    for path, text in changes:
        path.write_text(text)
        current = bundle.asset_hash()
        assert current not in seen, path
        seen.add(current)
    # The command line and the local emulator are not bundled: changing them redeploys nothing.
    (tmp_path / "novajudge" / "cli" / "app.py").write_text("import typer, rich\n")
    (tmp_path / "novajudge" / "local" / "judge_archive.py").write_text("import numpy\n")
    assert bundle.asset_hash() == current
    built = bundle.source_files()
    assert not [p for p in built if "local" in p.relative_to(tmp_path).parts], built


def test_pip_command_targets_lambdas_platform(tmp_path: Path) -> None:
    _fake_project(tmp_path)
    command = LambdaBundle("fn", python="3.14", root=tmp_path).pip_command(tmp_path / "out")
    text = " ".join(command)
    assert "--platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64" in text
    assert "--only-binary=:all:" in command and "--python-version 3.14" in text
    assert "--implementation cp" in text and f"--target {tmp_path / 'out'}" in text


def test_missing_handler_fails_bundling(tmp_path: Path) -> None:
    _fake_project(tmp_path)
    (tmp_path / "lambdas" / "fn" / "handler.py").unlink()
    with pytest.raises(FileNotFoundError, match=r"handler\.py"):
        LambdaBundle("fn", python="3.14", root=tmp_path).build(tmp_path / "out")
