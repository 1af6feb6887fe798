"""The delivery queue: accepted transitions planned into notifications, then delivered."""
