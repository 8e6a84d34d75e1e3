"""Data definitions shared by the pipeline: events, record operations, dead letters, field metadata."""
