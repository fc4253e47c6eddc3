"""The local emulator behind `make demo`: moto in-process, the real handlers, labelled stand-ins.

Nothing here reaches AWS: the emulator binds to 127.0.0.1, uses fake credentials and points every
boto3 client at itself. Everything it produces says it comes from stand-ins (`NOVAJUDGE_STAND_IN=1`).

- `emulator`: `local_aws()`, the moto server context manager (always stopped, environment restored).
- `moto_patches`: the only module touching moto internals (pinned to moto 5.2.5).
- `cfn`: CloudFormation intrinsics and Rules over a synthesized template.
- `deploy`: synthesize the CDK app and create its resources in the emulator.
- `standins`: the stand-in endpoints and judge (and their injectable faults).
- `demo`: `novajudge demo`, end to end.
"""
