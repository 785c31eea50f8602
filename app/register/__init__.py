"""The built-in processing register (package data)."""
