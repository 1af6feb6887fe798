"""The portal: server-rendered pages where consultants see every customer's backups and customers
see their own (see docs/portal.md)."""
