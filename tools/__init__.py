"""Small command-line tools that go with the pipeline (not part of it)."""
