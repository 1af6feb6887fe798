"""Policy: whether and when a transition is told (silences, inhibition, grouping, reminders)."""
