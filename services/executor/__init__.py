"""Runs backup plans itself (not built yet)."""
