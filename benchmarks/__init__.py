"""Benchmarks of optuna-gamma (not part of the installed package)."""
