"""Typed errors whose class names become stable Step Functions error names.

A Lambda that raises one of these surfaces `errorType` = the class name, so the state machine's
Catch and the CLI can tell a bad request from a failed generation without parsing messages.
"""


class NovaJudgeError(Exception):
    """Base class: every message names what was wrong and where."""


class ConfigError(NovaJudgeError, ValueError):
    """A configuration value (cdk.json context or -c key=value) is invalid."""


class InvalidRunRequest(NovaJudgeError, ValueError):
    """The execution input or a CLI option is invalid; nothing was started."""


class DatasetError(NovaJudgeError, ValueError):
    """A dataset could not be read; the message names the file, line and field."""


class RunExistsError(NovaJudgeError):
    """A run with this id already has objects in the bucket; runs never overwrite each other."""


class GenerationFailed(NovaJudgeError):
    """Too many generations failed (above the configured failure rate) or none succeeded."""


class JudgeConfigError(NovaJudgeError, ValueError):
    """The judge cannot start as asked (unknown region, instance type not allowed for the variant)."""


class ResultsError(NovaJudgeError, ValueError):
    """The judge's output is missing or malformed; the message names the file and what was expected."""


class QuotaExceeded(NovaJudgeError):
    """A SageMaker quota the run needs is below what it needs (prepare's pre-flight)."""
