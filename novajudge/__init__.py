"""Compare two LLMs on your prompts with the Amazon Nova LLM-as-a-judge.

The package holds the domain logic shared by the Lambda handlers, the `novajudge` command line and
the local emulator, so that each of those stays a thin adapter.
"""

__version__ = "0.1.0"
