"""End-to-end benchmark: upload → ingest → evaluator → notifier → webhook receiver / SMTP."""
