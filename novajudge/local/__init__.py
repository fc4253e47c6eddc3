"""The local emulator behind `make demo`: moto in-process, the real handlers, labelled stand-ins.

Nothing here reaches AWS: the emulator binds to 127.0.0.1, uses fake credentials and points every
boto3 client at itself. Everything it produces says it comes from stand-ins (`NOVAJUDGE_STAND_IN=1`).
"""
