"""Events in progress and the messages that start and end them (topic `event`)."""
from __future__ import annotations

from pipeline.messages import Event


class Episodes:
    """Each event is keyed by (kind, cause); a key is at most once in progress. Times are seconds on
    the monitor's clock; `to_ns` turns them back into the source's nanoseconds."""

    def __init__(self, source: str, to_ns):
        self.source, self.to_ns = source, to_ns
        self.active: dict[tuple, Event] = {}
        self.next_id = 1

    def __contains__(self, key) -> bool:
        return key in self.active

    def kinds(self) -> list[str]:
        return sorted({kind for kind, _ in self.active})

    def start(self, key, frame_id: int, t: float, t_start: float, confidence: float, value=None,
              cause: str | None = None) -> Event:
        """cause: what the event was judged from, where the key does not say (distraction: eyes | head)."""
        kind, cause = key[0], key[1] or cause
        event = Event(event_id=self.next_id, kind=kind, state="start", source=self.source, frame_id=frame_id,
                      t_ns=self.to_ns(t), t_start_ns=self.to_ns(t_start), confidence=round(float(confidence), 3),
                      cause=cause, value=None if value is None else round(float(value), 3))
        self.next_id += 1
        self.active[key] = event
        return event

    def end(self, key, frame_id: int, t: float, t_end: float) -> Event | None:
        started = self.active.pop(key, None)
        if started is None:
            return None
        t_end_ns = max(self.to_ns(t_end), started.t_start_ns)
        return Event(event_id=started.event_id, kind=started.kind, state="end", source=self.source,
                     frame_id=frame_id, t_ns=self.to_ns(t), t_start_ns=started.t_start_ns,
                     confidence=started.confidence, cause=started.cause, value=started.value, t_end_ns=t_end_ns,
                     duration_s=round((t_end_ns - started.t_start_ns) / 1e9, 3))

    def set(self, key, on: bool, frame_id: int, t: float, t_start: float, confidence: float = 1.0,
            value=None) -> Event | None:
        """Start the event when `on` and not in progress, end it (at t) when not `on` and in progress."""
        if on and key not in self.active:
            return self.start(key, frame_id, t, t_start, confidence, value)
        if not on and key in self.active:
            return self.end(key, frame_id, t, t)
        return None

    def end_all(self, frame_id: int, t: float) -> list[Event]:
        return [self.end(key, frame_id, t, t) for key in list(self.active)]
