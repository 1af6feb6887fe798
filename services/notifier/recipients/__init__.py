"""Recipients: who is told, from the database and a pluggable directory (database or LDAP)."""
