"""The training layer: the fit loop with selection on val, strategies, the run directory and
its loader, scoring a model on a split, thread settings."""
