"""Correspondence with the data subject about a request, and its effect on the clock."""
