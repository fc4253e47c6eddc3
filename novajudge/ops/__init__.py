"""Operating a deployed Nova Judge stack: find its outputs, start and follow runs, read results and
logs, estimate costs and stop the endpoints.

These modules hold the logic; `novajudge/cli/*_cmd.py` are thin Typer adapters over them, so the
same functions serve the command line, the local emulator and the tests (which run them against
moto).
"""
