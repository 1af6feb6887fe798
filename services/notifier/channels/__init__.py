"""Channels: how a message reaches a receiver (e-mail, webhooks) and what it looks like."""
