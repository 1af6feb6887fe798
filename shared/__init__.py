"""Backstop's shared kernel: settings, events, the JetStream bus, the database and tenancy."""
