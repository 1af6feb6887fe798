"""Ingest: the HTTP front door backup clients report to; every upload becomes one stored event."""
