"""The portal's run history: a projection of the ingest and alert streams into tables the pages
read (runs, per-day cells per job, usage per account and day)."""
