"""DSR_SECRET_KEY rotation: the keys look-ups try (``lookup``) and re-keying (``rotation``)."""
