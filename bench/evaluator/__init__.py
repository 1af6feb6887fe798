"""Evaluator benchmark: ``python -m bench.evaluator``."""
