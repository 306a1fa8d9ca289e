#!/usr/bin/env python3
"""A NetSync slave in Python, written against stubs generated from
proto/netsync/v1/netsync.proto (run ./generate.sh first).

It does what the TypeScript slave does:

* opens NetSyncService.Sync, naming itself with the `netsync-slave-id`
  request metadata;
* answers every Ping with a Pong carrying the same seq, at once;
* prints every Custom command as `command: <data>` and, when the command
  asked for one (request_id != 0), answers with a Reply `python:<data>`;
* runs a command carrying a command_id at most once: a repeat (a master
  re-sent it after a failover) is answered with the first run's result and
  not run again, as netsync.proto asks of every slave (it remembers the
  last 10,000 ids, each for 10 minutes);
* drops the stream when the master has been silent for --master-timeout
  seconds, and reconnects with exponential backoff and full jitter whenever
  the stream ends;
* on SIGINT/SIGTERM half-closes the stream (the master then reports a clean
  "slave closed the stream") and exits with status 0.

Usage:
    ./generate.sh
    /usr/bin/python3 slave.py --master 127.0.0.1:50051 --id py-1
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import queue
import random
import signal
import sys
import threading
import time
from typing import Callable, Iterator, Optional, Tuple

import grpc

# The generated modules live in ./gen by default (what ./generate.sh writes).
# A directory already on PYTHONPATH wins, so they can be generated elsewhere.
sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen"))
try:
    from netsync.v1 import netsync_pb2 as pb
    from netsync.v1 import netsync_pb2_grpc as pb_grpc
except ImportError as err:  # pragma: no cover - a setup mistake, not a runtime path
    sys.exit(f"cannot import the generated NetSync stubs ({err}); run ./generate.sh first")

SLAVE_ID_METADATA_KEY = "netsync-slave-id"
MAX_MESSAGE_BYTES = 1024 * 1024  # the master's default limit, both ways

# Reconnect backoff, as in the TypeScript slave: the n-th wait is uniform in
# [0, min(MAX, INITIAL * FACTOR**n)) seconds; it resets after a healthy session.
BACKOFF_INITIAL = 0.1
BACKOFF_FACTOR = 2.0
BACKOFF_MAX = 10.0

# How long a half-closed stream may take to finish before it is cancelled.
CLOSE_GRACE = 1.0
# How often the watchdog thread looks at the clock and the stop flag.
WATCHDOG_TICK = 0.05
# Commands remembered by command_id, and for how long in seconds: netsync.proto
# asks for at least 10 minutes; the Node slave keeps as many for as long.
RAN_ENTRIES = 10_000
RAN_MAX_AGE = 600.0

log = logging.getLogger("netsync-slave")


class Backoff:
    """Exponential backoff with full jitter."""

    def __init__(self) -> None:
        self.attempt = 0

    def next(self) -> float:
        cap = min(BACKOFF_MAX, BACKOFF_INITIAL * BACKOFF_FACTOR**self.attempt)
        self.attempt += 1
        return random.uniform(0, cap)

    def reset(self) -> None:
        self.attempt = 0


class CommandLog:
    """The results of recent commands by command_id, so that a repeat (a master
    re-sent it after a failover) is answered from here and not run twice.
    Bounded in count and age, oldest dropped first, as the Node slave's."""

    def __init__(self, max_entries: int = RAN_ENTRIES, max_age: float = RAN_MAX_AGE,
                 now: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries
        self.max_age = max_age
        self.now = now
        # Insertion order is age order: command_id -> (when it ran, its result).
        self.entries: "collections.OrderedDict[str, Tuple[float, str]]" = collections.OrderedDict()

    def get(self, command_id: str) -> Optional[str]:
        """The result of the command's first run, if it ran within the bounds."""
        entry = self.entries.get(command_id)
        if entry is None:
            return None
        if self.now() - entry[0] > self.max_age:
            del self.entries[command_id]
            return None
        return entry[1]

    def add(self, command_id: str, result: str) -> None:
        """Records a command's first run; drops the oldest while too many or too old."""
        now = self.now()
        self.entries.pop(command_id, None)  # an aged-out id that ran again goes to the end
        self.entries[command_id] = (now, result)
        while self.entries:
            oldest = next(iter(self.entries.values()))
            if len(self.entries) <= self.max_entries and now - oldest[0] <= self.max_age:
                break
            self.entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self.entries)


class Session:
    """One attempt at a stream: its channel, call, outbound queue and clock."""

    def __init__(self, target: str, slave_id: Optional[str]) -> None:
        self.channel = grpc.insecure_channel(
            target,
            options=[
                # A connection of our own per session, so that a dead one is
                # never handed back to us and our backoff alone sets the pace.
                ("grpc.use_local_subchannel_pool", 1),
                ("grpc.enable_retries", 0),
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ],
        )
        # Everything we send goes through this queue; None half-closes the stream.
        self.outbox: "queue.Queue[Optional[pb.Command]]" = queue.Queue()
        metadata = ((SLAVE_ID_METADATA_KEY, slave_id),) if slave_id else ()
        stub = pb_grpc.NetSyncServiceStub(self.channel)
        self.call = stub.Sync(self._requests(), metadata=metadata)
        self.last_heard = time.monotonic()
        self.healthy = False  # heard from the master at least once
        self.half_closed = False
        self.done = threading.Event()

    def _requests(self) -> Iterator[pb.Command]:
        # gRPC consumes this iterator on a thread of its own.
        while True:
            command = self.outbox.get()
            if command is None:
                return
            yield command

    def send(self, command: pb.Command) -> None:
        self.outbox.put(command)

    def half_close(self) -> None:
        if not self.half_closed:
            self.half_closed = True
            self.outbox.put(None)

    def close(self) -> None:
        self.done.set()
        self.half_close()  # lets gRPC's request thread finish
        self.call.cancel()  # no-op when the call already ended
        self.channel.close()


class Slave:
    def __init__(self, target: str, slave_id: Optional[str], master_timeout: float) -> None:
        self.target = target
        self.slave_id = slave_id
        self.master_timeout = master_timeout
        self.backoff = Backoff()
        # Set by the signal handler. A plain attribute on purpose: a handler
        # runs on the main thread between two bytecodes, so it must not take a
        # non-reentrant lock (queue.Queue, threading.Event) that the code it
        # interrupted may hold. The watchdog thread acts on the flag instead.
        self.stopping = False
        # Results of recent commands by command_id: a repeat is answered from here, not run twice.
        self.ran = CommandLog()

    def request_stop(self, signum: int, _frame: object) -> None:
        if not self.stopping:
            log.info("%s received, closing the stream", signal.Signals(signum).name)
        self.stopping = True

    def run(self) -> int:
        while not self.stopping:
            session = Session(self.target, self.slave_id)
            watchdog = threading.Thread(target=self._watch, args=(session,), daemon=True)
            watchdog.start()
            try:
                self._serve(session)
            finally:
                session.close()
                watchdog.join()
            if self.stopping:
                break
            if session.healthy:
                self.backoff.reset()
            delay = self.backoff.next()
            log.info("reconnecting in %.0f ms", delay * 1000)
            self._sleep(delay)
        log.info("stopped")
        return 0

    def _serve(self, session: Session) -> None:
        """Reads the stream until it ends; answers as messages arrive."""
        try:
            # The master accepts a stream by sending its response headers at
            # once, echoing the id it registered us under. This waits for them
            # (or for the call to fail; the watchdog bounds the wait).
            headers = dict(session.call.initial_metadata() or ())
            if session.call.is_active():
                registered = headers.get(SLAVE_ID_METADATA_KEY, self.slave_id)
                log.info("connected to %s as %s", self.target, registered)
            for command in session.call:
                session.last_heard = time.monotonic()
                session.healthy = True
                self._handle(session, command)
            # The master finished the stream with OK: it accepted our half-close.
            log.info("stream closed by the master")
        except grpc.RpcError as err:
            code, details = err.code(), err.details()
            if self.stopping and code == grpc.StatusCode.CANCELLED:
                return
            log.warning("stream ended: %s %s", code.name if code else "?", details or "")

    def _handle(self, session: Session, command: pb.Command) -> None:
        kind = command.WhichOneof("kind")
        if kind == "ping":
            # Answer first, before anything else: the master's liveness depends on it.
            session.send(pb.Command(pong=pb.Pong(seq=command.ping.seq)))
        elif kind == "custom":
            custom = command.custom
            result = self.ran.get(custom.command_id) if custom.command_id else None
            if result is None:
                print(f"command: {custom.data}", flush=True)
                # This handler is instant. A slow one belongs on a worker thread,
                # so that it never delays the Pongs queued behind it.
                result = "python:" + custom.data
                if custom.command_id:
                    self.ran.add(custom.command_id, result)
            if custom.request_id != 0:
                reply = pb.Reply(request_id=custom.request_id, data=result)
                session.send(pb.Command(reply=reply))
        # Anything else (a Pong, a Reply, an empty Command) needs no answer.

    def _watch(self, session: Session) -> None:
        """Drops a silent stream, and ends the stream on a stop request."""
        close_by: Optional[float] = None
        while not session.done.wait(WATCHDOG_TICK):
            now = time.monotonic()
            if self.stopping:
                if close_by is None:
                    session.half_close()  # the master answers with OK
                    close_by = now + CLOSE_GRACE
                elif now >= close_by:
                    session.call.cancel()  # it did not: give up on it
            elif now - session.last_heard > self.master_timeout:
                log.warning("master silent for %.1f s, dropping the stream", now - session.last_heard)
                session.call.cancel()
                return

    def _sleep(self, seconds: float) -> None:
        """Sleeps in short steps so that a stop request cuts the wait short."""
        deadline = time.monotonic() + seconds
        while not self.stopping:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, WATCHDOG_TICK))


def parse_args(argv: Optional[list] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="A NetSync slave written in Python.")
    parser.add_argument("--master", default="127.0.0.1:50051", metavar="HOST:PORT",
                        help="the master's address (default %(default)s)")
    parser.add_argument("--id", metavar="NAME",
                        help="this slave's id; the master assigns one when absent")
    parser.add_argument("--master-timeout", type=float, default=15.0, metavar="SECONDS",
                        help="drop and reopen the stream after this much silence from the master "
                             "(default %(default)s)")
    args = parser.parse_args(argv)
    if not args.master_timeout > 0:
        parser.error("--master-timeout must be greater than 0")
    if args.id is not None and not args.id:
        parser.error("--id must not be empty")
    return args


def main() -> int:
    args = parse_args()
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(levelname)s slave %(message)s")
    slave = Slave(args.master, args.id, args.master_timeout)
    signal.signal(signal.SIGINT, slave.request_stop)
    signal.signal(signal.SIGTERM, slave.request_stop)
    return slave.run()


if __name__ == "__main__":
    sys.exit(main())
