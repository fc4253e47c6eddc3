"""Generation: prompts from a dataset, answers from both candidate endpoints, the judge input.

Modules: `datasets` (prompt sources), `endpoints` (one endpoint, retries), `manifest` (judge input
and the line-by-line manifest), `layout` (S3 keys of a run), `runner` (the whole step).
"""
