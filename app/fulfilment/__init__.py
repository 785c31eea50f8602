"""Doing what a request asks in the data sources: jobs, the runner, steps, effects, tasks."""
