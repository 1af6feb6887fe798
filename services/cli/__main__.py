"""``python -m services.cli`` is the ``backstop`` command."""

from services.cli import app

app()
