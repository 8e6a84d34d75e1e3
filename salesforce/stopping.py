"""The run's stop, heard by every wait of the writers.

Writers wait in several places: a retry's backoff, the call rate limit and the adaptive throttler, the
org's API allocation or a refused login (checked again at growing intervals, up to minutes), a Bulk job's
polls. Ctrl-C or SIGTERM (pipeline/main.py) calls `stop()`, and every such wait in this process ends at
once by raising `Stopped`, instead of the run waiting them out: a run waiting for the org's allocation
used to go on waiting after Ctrl-C, for as long as the allocation stayed used up.

`Stopped` is a BaseException, as KeyboardInterrupt is, so that no handler of API errors turns it into a
dead letter or a retry. What a stopped run has not written is the source's to deliver again (files are
read again from the start, a Kafka group's offsets are committed only for handled events; the run logs
what becomes of the rest), and the writes by match key make a second write of a record safe.
"""

import threading


class Stopped(BaseException):
    """The run is stopping: raised out of a writer's wait."""


_stop = threading.Event()


def sleep(seconds: float) -> None:
    """Waits `seconds`, as time.sleep does, unless the run stops first: then raises Stopped."""
    if _stop.wait(max(seconds, 0.0)):
        raise Stopped("the run is stopping")


def stop() -> None:
    """Ends every wait of this process's writers, now and later (until `reset`)."""
    _stop.set()


def reset() -> None:
    """A new run in this process: its writers wait again."""
    _stop.clear()
