"""Prometheus metrics: the instruments capabilities record into, the HTTP middleware, the
scrape-time figures read from the database, and the token-protected exposition (``/metrics``
on the API, a port of its own on the worker). See docs/operations.md, "Metrics"."""
