"""Officer casework: who owns a case, internal notes, and bulk actions on many requests."""
