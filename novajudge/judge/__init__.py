"""The Nova judge: catalogue of variants, recipe rendering and the training-job request."""
