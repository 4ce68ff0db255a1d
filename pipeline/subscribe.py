"""Read the pipeline's stream: `python -m pipeline.subscribe [--endpoint E] [--topic emotion|status|event]`.

Each ZeroMQ message is two frames, [topic, JSON]; any SUB socket in any language reads it the same
way (the JSON Schemas of the topics are in schemas/). From Python, `subscribe()` + `receive()` give
typed messages (pipeline/messages.py: Emotion, Status, Event); a message that does not decode is
skipped, with one line on stderr. The command prints one JSON object per line on stdout, or with
--brief one short line per emotion and event message; it exits when the run's last status says the
stream ended (`ended`), unless --follow.
"""
from __future__ import annotations

import argparse
import json
import sys

import zmq

from face.ranges import above, at_least
from pipeline import wire
from pipeline.config import DEFAULT_PUBLISH
from pipeline.curve import check_endpoint, join_curve
from pipeline.messages import TOPICS, DecodeError, Event, Published, Status, decode_published, to_builtins


def subscribe(endpoint: str = DEFAULT_PUBLISH, topics=TOPICS, ctx: zmq.Context | None = None,
              curve_key=None, curve_server_key=None) -> zmq.Socket:
    """A SUB socket on the stream; with CURVE, this subscriber's secret key file and the pipeline's
    public key file (pipeline/curve.py)."""
    check_endpoint(endpoint, "--endpoint")
    ctx = ctx or zmq.Context.instance()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVHWM, 10000)
    # The stream's messages are small JSON; a peer sending more is cut off by libzmq before it reaches
    # memory (10 000 queued messages of any size could otherwise exhaust it).
    sock.setsockopt(zmq.MAXMSGSIZE, wire.MAX_CONTROL_BYTES)
    if curve_key or curve_server_key:
        join_curve(sock, curve_key, curve_server_key)
    for topic in topics:
        sock.setsockopt(zmq.SUBSCRIBE, topic.encode())
    try:
        sock.connect(endpoint)
    except zmq.ZMQError as error:   # a form libzmq refuses that the check let through
        sock.close(0)
        raise ValueError(f"--endpoint {endpoint}: cannot connect ({error})") from None
    return sock


def receive(sock: zmq.Socket, timeout_ms: int, on_bad=None) -> tuple[str, Published] | None:
    """(topic, message) of the next well-formed message, or None when none came within the timeout.
    A foreign or malformed message is skipped; `on_bad(reason)` hears of it (default: one line on
    stderr)."""
    on_bad = on_bad or (lambda reason: print(f"exprada subscribe: skipped {reason}", file=sys.stderr, flush=True))
    while sock.poll(timeout_ms):
        parts = sock.recv_multipart()
        if len(parts) != 2:
            on_bad(f"a message of {len(parts)} frames (expected [topic, JSON])")
            continue
        topic = parts[0].decode(errors="replace")
        try:
            message = decode_published(parts[1])
        except DecodeError as error:
            on_bad(f"an undecodable {topic!r} message: {error}")
            continue
        return topic, message
    return None


QUIET_NOTE_S = 5   # without --timeout: say once that nothing came, after this long

BRIEF_HEADER = f"{'frame':>6} {'smoothed':<10} {'this frame':<10} {'latency':>10} | driver monitor"


def brief(message: Published) -> str:
    """One line for people: frame, smoothed and per-frame label (or why there is none), latency, then
    the driver monitor's eyes, gaze and events in progress; an event's start or end; a status in
    words."""
    if isinstance(message, Status):
        stages = ", ".join(f"{name} {stage.fps:.0f} fps" + ("" if stage.alive else " (down)")
                           for name, stage in message.stages.items())
        error = f"; error: {message.error}" if message.error else ""
        if message.ended:
            return f"END of stream: {message.ended}"
        return f"STATUS {message.mode}, source {message.source.state}: {stages}{error}"
    if isinstance(message, Event):
        when = (f"after {message.duration_s:.1f} s" if message.state == "end"
                else f"confidence {message.confidence:.2f}")
        cause = f" ({message.cause})" if message.cause else ""
        return f"{message.frame_id:>6} EVENT {message.kind}{cause} {message.state} {when}"
    label = message.label or ("no face" if message.face is None else "invalid")
    line = (f"{message.frame_id:>6} {message.smoothed_label or '-':<10} {label:<10} "
            f"{message.latency_ms['total']:7.1f} ms")
    if not message.valid and message.face is not None and message.reason:
        line += f" ({message.reason})"
    driver = message.driver
    if driver is None:
        return line
    parts = [driver.state]
    if driver.eyes is not None:
        eyes = driver.eyes
        closed = f" closed {eyes.closed_prob:.2f}" if eyes.closed_prob is not None else ""
        parts.append(f"eyes {eyes.openness_left:.2f}/{eyes.openness_right:.2f}{closed}")
    if driver.on_road is not None:
        parts.append(("on road" if driver.on_road else f"off road {driver.off_road_s:.1f} s") + f" ({driver.gaze_from})")
    if driver.blink:
        parts.append(f"blink {driver.blink.duration_ms:.0f} ms")
    if driver.events:
        parts.append("[" + ", ".join(driver.events) + "]")
    return line + " | " + ", ".join(parts)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--endpoint", default=DEFAULT_PUBLISH)
    p.add_argument("--topic", action="append", choices=TOPICS, help="emotion, status and/or event (default all)")
    p.add_argument("--count", type=at_least(1), help="exit after this many messages")
    p.add_argument("--timeout", type=above(0), help="exit after this many seconds without a message")
    p.add_argument("--brief", action="store_true", help="one short line per message, for people, instead of JSON")
    p.add_argument("--follow", action="store_true",
                   help="keep listening after a run's end-of-stream status (for the next run); default: exit 0")
    p.add_argument("--curve-key", metavar="FILE", help="CURVE: this subscriber's .key_secret file")
    p.add_argument("--curve-server-key", metavar="FILE", help="CURVE: the pipeline's public .key file")
    args = p.parse_args(argv)
    if bool(args.curve_key) != bool(args.curve_server_key):
        p.error("CURVE needs both --curve-key and --curve-server-key")
    try:
        sock = subscribe(args.endpoint, args.topic or TOPICS, curve_key=args.curve_key,
                         curve_server_key=args.curve_server_key)
    except ValueError as error:
        print(f"exprada subscribe: {error}", file=sys.stderr)
        return 2
    seen = 0
    print(f"exprada subscribe: listening on {args.endpoint} for {', '.join(args.topic or TOPICS)}"
          + (f" (exit after {args.timeout:g} s of silence)" if args.timeout else " (Ctrl-C to stop)"),
          file=sys.stderr, flush=True)
    if args.brief:
        print(BRIEF_HEADER, flush=True)
    try:
        while args.count is None or seen < args.count:
            got = receive(sock, int(args.timeout * 1000) if args.timeout else QUIET_NOTE_S * 1000)
            if got is None and not args.timeout and not seen:
                print(f"exprada subscribe: nothing from {args.endpoint} in {QUIET_NOTE_S} s; is a pipeline "
                      f"publishing there (run_pipeline.py --publish)? still listening", file=sys.stderr, flush=True)
                got = receive(sock, -1)
            elif got is None and not args.timeout:
                continue
            if got is None:
                break
            topic, message = got
            seen += 1
            if args.brief:
                print(brief(message), flush=True)
            else:
                print(json.dumps({"topic": topic, **to_builtins(message)}), flush=True)
            if isinstance(message, Status) and message.ended and not args.follow:
                break
    except KeyboardInterrupt:
        pass
    finally:
        sock.close(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
