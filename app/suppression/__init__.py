"""The suppression list: keyed hashes of who must not be contacted, and on which channels."""
