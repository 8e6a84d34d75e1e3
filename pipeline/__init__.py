"""Options, wiring and entry point of the beamforce pipeline."""
