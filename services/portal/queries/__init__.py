"""The portal's reads: every query takes a :class:`shared.scopes.Scope` and filters by it in
SQL, so an id from another tenant matches no row (None or empty, never someone else's data).
The returned rows are frozen dataclasses the pages, the JSON API and the CLI render."""
