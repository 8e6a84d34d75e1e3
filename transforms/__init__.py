"""Beam composites and DoFns, with the pure helpers they use."""
