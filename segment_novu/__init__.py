"""Segment → Novu bridge: a Cloud Function that turns Segment deliveries into Novu calls."""
