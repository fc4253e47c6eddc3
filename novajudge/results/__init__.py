"""Reading the Nova judge's output and turning it into results people can trust and read.

`parse` (archive -> flattened tables), `stats` (counts, intervals, tests, rubric analysis),
`figure` (the summary PNG), `report` (the self-contained HTML) and `summarize` (all of it, the
entry point used by the summarize Lambda and `novajudge summarize`).
"""
