"""A Python Lambda function of the pipeline, bundled on this machine without Docker.

Why local bundling: Docker is not available to most users of this project (and not at all on CI),
yet the summarize function needs compiled wheels (numpy, pandas, matplotlib, fastparquet) built for
Lambda's Linux, not for the developer's machine. pip can fetch exactly those wheels for another
platform (`--platform ... --only-binary=:all:`), so bundling is a pip install into a folder plus a
copy of our own code. The pip install is cached under `.build/lambda-deps/` (git-ignored), keyed by
the requirements, the target platform and the Python version, so repeated synths only copy files.

Each bundle holds, at its root: the third-party packages of `lambdas/<name>/requirements.txt`,
`handler.py` (the entry point `handler.handler`), the `novajudge` package (without the command line
and the local emulator, which need packages that are not in the bundle) and `recipes/`.

With context `aws:cdk:bundling-stacks=[]` CDK skips bundling (unit tests, the local demo): the
asset is then the small `lambdas/<name>` folder and nothing is installed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.constructs import nag

#: The repository root: bundles copy `novajudge/` and `recipes/` from here.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: Git-ignored cache of pip installs below the project root (see .gitignore).
CACHE_DIR = Path(".build") / "lambda-deps"
#: Bumped when what the bundler produces changes, so cached installs and asset hashes follow.
BUNDLER_VERSION = "1"
#: The Python the bundles run on, chosen because the test machines have that interpreter:
#: tests/infra/test_bundle_size.py imports every bundle under exactly this major.minor, so what the
#: tests prove is what Lambda runs. Lambda also offers python3.14, but no 3.14 interpreter is
#: available here to import-test it; cdk-nag's L1 ("use the latest runtime") is acknowledged for
#: this version only, so any other runtime is still flagged.
IMPORT_TESTED_PYTHON = "3.13"

#: manylinux_2_28 first: with manylinux2014 alone pip silently settles on old numpy/pandas wheels.
#: Keyed by `Architecture.name` (jsii objects are not stable dict keys).
PLATFORMS: dict[str, tuple[str, ...]] = {
    "x86_64": ("manylinux_2_28_x86_64", "manylinux2014_x86_64"),
    "arm64": ("manylinux_2_28_aarch64", "manylinux2014_aarch64"),
}

#: Parts of `novajudge/` a Lambda never imports: they need typer/rich/moto, absent from bundles.
NOVAJUDGE_EXCLUDED = ("cli", "local")
#: Folder names dropped anywhere in a bundle: byte code is rebuilt on Lambda, tests never run there.
DEAD_DIRS = frozenset({"__pycache__", "tests"})
#: File suffixes dropped anywhere in a bundle.
DEAD_SUFFIXES = (".pyc", ".pyo")


def python_version(runtime: lambda_.Runtime) -> str:
    """`python3.13` -> `3.13`: the interpreter version pip must pick wheels for."""
    name = runtime.name
    if not name.startswith("python"):
        raise ValueError(f"not a Python runtime: {name}")
    return name.removeprefix("python")


def strip_dead_weight(root: Path) -> None:
    """Remove byte code, test suites and console scripts: Lambda runs none of them.

    pandas and numpy ship their test suites (tens of MB); `bin/` holds console scripts whose
    shebang points at the build machine's interpreter.
    """
    for path in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and path.name in DEAD_DIRS:
            shutil.rmtree(path, ignore_errors=True)
        elif path.is_file() and path.suffix in DEAD_SUFFIXES:
            path.unlink()
    shutil.rmtree(root / "bin", ignore_errors=True)


def _copy_tree(src: Path, dst: Path, *, ignore: Iterable[str] = (), link: bool = False) -> None:
    """Copy `src` into `dst`, skipping dead weight; hard-link when asked (the cached deps)."""
    ignored = set(ignore) | DEAD_DIRS

    def _ignore(_dir: str, names: list[str]) -> set[str]:
        return {n for n in names if n in ignored or n.endswith(DEAD_SUFFIXES)}

    def _link_or_copy(s: str, d: str) -> Any:
        try:
            os.link(s, d)
            return d
        except OSError:
            return shutil.copy2(s, d)

    shutil.copytree(
        src,
        dst,
        ignore=_ignore,
        dirs_exist_ok=True,
        copy_function=_link_or_copy if link else shutil.copy2,
    )


class LambdaBundle:
    """What goes into one function's bundle, and how to build it into a folder.

    Usable without CDK (the bundle-size test builds bundles directly), and wrapped by
    `LocalBundler` for `cdk synth`.
    """

    def __init__(
        self,
        name: str,
        *,
        python: str,
        architecture: lambda_.Architecture = lambda_.Architecture.X86_64,
        root: Path = PROJECT_ROOT,
    ) -> None:
        self.name = name
        self.python = python
        self.platforms = PLATFORMS[architecture.name]
        self.root = root
        self.cache_root = root / CACHE_DIR
        self.source_dir = root / "lambdas" / name
        self.requirements = self.source_dir / "requirements.txt"

    # -- identity ---------------------------------------------------------------------------------

    def deps_key(self) -> str:
        """Hash of what determines the pip install: requirements, platform, Python, bundler."""
        digest = hashlib.sha256()
        for part in (BUNDLER_VERSION, self.python, *self.platforms, self.requirements.read_text()):
            digest.update(part.encode())
            digest.update(b"\0")
        return digest.hexdigest()[:20]

    def source_files(self) -> list[Path]:
        """Every file of our own that lands in the bundle, in a stable order."""
        files = [self.requirements, self.source_dir / "handler.py"]
        package = self.root / "novajudge"
        for path in sorted(package.rglob("*")):
            rel = path.relative_to(package).parts
            if (
                path.is_file()
                and rel[0] not in NOVAJUDGE_EXCLUDED
                and not DEAD_DIRS.intersection(rel)
                and not path.name.endswith(DEAD_SUFFIXES)
            ):
                files.append(path)
        recipes = self.root / "recipes"
        files.extend(sorted(p for p in recipes.rglob("*") if p.is_file()))
        return [p for p in files if p.exists()]

    def asset_hash(self) -> str:
        """Hash of the bundle's inputs: a changed handler, package file or pin redeploys."""
        digest = hashlib.sha256(self.deps_key().encode())
        for path in self.source_files():
            digest.update(str(path.relative_to(self.root)).encode())
            digest.update(b"\0")
            digest.update(path.read_bytes())
        return digest.hexdigest()

    # -- building ---------------------------------------------------------------------------------

    def pip_command(self, target: Path) -> list[str]:
        """The pip install of the requirements for Lambda's platform, wheels only."""
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        command += ["--no-compile", "--only-binary=:all:", "--implementation", "cp"]
        command += ["--python-version", self.python]
        for platform in self.platforms:
            command += ["--platform", platform]
        command += ["--target", str(target), "-r", str(self.requirements)]
        return command

    def dependencies(self) -> Path:
        """The cached pip install, made on first use; atomic so an interrupted synth leaves no half."""
        # Keyed by content only: functions with the same requirements share one install.
        cached = self.cache_root / f"py{self.python}-{self.deps_key()}"
        if cached.is_dir():
            return cached
        self.cache_root.mkdir(parents=True, exist_ok=True)
        staging = cached.with_name(f"{cached.name}.tmp-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        print(f"novajudge: pip-installing {self.requirements} for {self.python}", file=sys.stderr)
        result = subprocess.run(self.pip_command(staging), capture_output=True, text=True, check=False)
        if result.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise RuntimeError(
                f"bundling lambdas/{self.name}: pip install failed "
                f"(exit {result.returncode}):\n{result.stderr.strip()[-4000:]}"
            )
        strip_dead_weight(staging)
        try:
            staging.rename(cached)
        except OSError:  # another synth finished the same install first
            shutil.rmtree(staging, ignore_errors=True)
        return cached

    def build(self, output_dir: Path) -> Path:
        """Fill `output_dir` with dependencies, handler, `novajudge/` and `recipes/`."""
        handler = self.source_dir / "handler.py"
        if not handler.is_file():
            raise FileNotFoundError(f"bundling lambdas/{self.name}: {handler} does not exist")
        output_dir.mkdir(parents=True, exist_ok=True)
        _copy_tree(self.dependencies(), output_dir, link=True)
        shutil.copy2(handler, output_dir / "handler.py")
        _copy_tree(self.root / "novajudge", output_dir / "novajudge", ignore=NOVAJUDGE_EXCLUDED)
        recipes = self.root / "recipes"
        if recipes.is_dir():
            _copy_tree(recipes, output_dir / "recipes")
        return output_dir


@jsii.implements(cdk.ILocalBundling)
class LocalBundler:
    """CDK's hook for bundling without Docker: builds the `LambdaBundle` into CDK's output folder."""

    def __init__(self, bundle: LambdaBundle) -> None:
        self.bundle = bundle

    def try_bundle(self, output_dir: str, options: cdk.BundlingOptions) -> bool:
        """Called by CDK with the options positionally; True tells CDK not to try Docker."""
        self.bundle.build(Path(output_dir))
        return True


class PythonFunction(Construct):
    """One Lambda function with its own role, its own log group and a locally built bundle.

    The role starts with nothing but writing to this function's log group (no AWS managed
    policy); what the function may touch is granted by the stack, in one place. The log group is
    destroyed with the stack so `cdk destroy` leaves nothing behind.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        description: str,
        runtime: lambda_.Runtime,
        memory_size: int,
        timeout: cdk.Duration,
        environment: Mapping[str, str],
        ephemeral_storage_size: cdk.Size | None = None,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        architecture: lambda_.Architecture = lambda_.Architecture.X86_64,
    ) -> None:
        super().__init__(scope, construct_id)
        self.bundle = LambdaBundle(name, python=python_version(runtime), architecture=architecture)

        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=log_retention,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Execution role of the {name} function",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteOwnLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )

        code = lambda_.Code.from_asset(
            str(self.bundle.source_dir),
            asset_hash=self.bundle.asset_hash(),
            asset_hash_type=cdk.AssetHashType.CUSTOM,
            bundling=cdk.BundlingOptions(
                # Never pulled: the local bundler always succeeds or raises.
                image=runtime.bundling_image,
                local=LocalBundler(self.bundle),
            ),
        )
        self.function = lambda_.Function(
            self,
            "Function",
            description=description,
            runtime=runtime,
            architecture=architecture,
            handler="handler.handler",
            code=code,
            role=self.role,
            memory_size=memory_size,
            timeout=timeout,
            ephemeral_storage_size=ephemeral_storage_size,
            environment=dict(environment),
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
        )
        if python_version(runtime) == IMPORT_TESTED_PYTHON:
            nag.acknowledge(
                self.function,
                "L1",
                f"python{IMPORT_TESTED_PYTHON} is the newest runtime whose interpreter the tests "
                "import every bundle with (tests/infra/test_bundle_size.py)",
            )
        cfn = self.function.node.default_child
        assert isinstance(cfn, lambda_.CfnFunction)
        # The local emulator finds the handler source through this (docs/design.md).
        cfn.add_metadata("novajudge:source", f"lambdas/{name}")
