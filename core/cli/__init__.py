"""Command-line entry points (varsr-train, varsr-sample, varsr-eval)."""
