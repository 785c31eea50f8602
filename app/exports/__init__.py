"""Access and portability files: the writer (JSON, CSV zip), storage, links and expiry."""
