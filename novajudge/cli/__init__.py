"""The `novajudge` command line: thin Typer commands over the package's domain modules."""
