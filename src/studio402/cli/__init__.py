"""The `studio402` command line."""
