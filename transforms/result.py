"""The two outputs of a fallible composite: what went on, and what became a dead letter."""

from typing import NamedTuple

import apache_beam as beam


class Result(NamedTuple):
    """`output` goes on down the pipeline; `dead_letter` is a PCollection of DeadLetter."""

    output: beam.PCollection
    dead_letter: beam.PCollection
