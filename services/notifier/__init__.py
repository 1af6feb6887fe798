"""Notifier: decides who hears about an alert, through which channel, and delivers it once."""
