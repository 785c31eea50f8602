"""Data subject rights service: one package per capability (see README, "Layout")."""
