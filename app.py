#!/usr/bin/env python3
"""CDK entry point: `npx cdk synth|deploy|destroy` runs this through cdk.json."""

import sys

from novajudge.errors import ConfigError
from stacks.app_builder import build_app

if __name__ == "__main__":
    try:
        app = build_app()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    app.synth()
