"""Trusting the judge: position bias, re-weighting without re-judging, calibration against humans.

Entry point for the summary: `novajudge.trust.analyse.analyse`. Each analysis also stands alone
(`position`, `reweight`, `calibration`) so the CLI can run one without the others.
"""
