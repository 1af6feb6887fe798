"""What a portal user changes: each action checks the user's right in the query (a target
outside their scope is not found) and against their role and read-only flag, then calls the
owning service's admin facade."""
