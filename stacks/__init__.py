"""The CDK stacks, one per concern: storage, candidate endpoints, evaluation pipeline."""
