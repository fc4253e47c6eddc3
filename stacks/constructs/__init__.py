"""Constructs shared by the stacks: Lambda bundling, image maps, cdk-nag acknowledgements."""
