"""The three Lambda steps of the evaluation state machine, as plain functions.

`generate`, `start_judge` and `summarize` each take the state-machine event, a typed environment
(`novajudge.steps.environment`, read once from `os.environ` by the handler) and the AWS clients they
use, and return the next piece of state. `lambdas/<name>/handler.py` only adapts Lambda to them
(Powertools logging and tracing, clients, the remaining time), so tests call the steps directly.
"""
