"""Keeps a standby server and EBS snapshots current on AWS (not built yet)."""
