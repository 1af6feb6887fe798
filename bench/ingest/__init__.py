"""Ingest throughput benchmark: the real ingest against a bare FastAPI app, driven by wrk.

Run with ``python -m bench.ingest`` (needs the ``wrk`` Debian package).
"""
