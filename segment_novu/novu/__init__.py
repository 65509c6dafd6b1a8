"""Novu's API: the HTTP client, its transport, reading its responses, running one operation."""
