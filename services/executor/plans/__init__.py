"""Plans and the inventory of targets: declared in YAML, validated, applied, expanded into tasks."""
