"""Evaluator: turns the event stream into alerts that fire and resolve."""
