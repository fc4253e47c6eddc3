"""Generation: prompts from a dataset, answers from both candidate endpoints, the judge input.

Modules: `datasets` (prompt sources), `endpoints` (one endpoint, retries), `manifest` (judge input
and the line-by-line manifest), `store` (claiming the run id, writing its objects). The step that
puts them together is `novajudge.steps.generate`.
"""
