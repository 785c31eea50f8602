"""Reporting for the regulator: figures, the register, calendar feeds of due dates, alerts."""
