#!/usr/bin/env python3
"""A delaying TCP proxy on 127.0.0.1, to test and benchmark SMTP at a distance.

    latency_proxy.py --rtt-ms 50 --target PORT [--port 0]

Listens on 127.0.0.1:PORT (0 picks a free port), forwards every connection to
127.0.0.1:TARGET and delays every byte by RTT/2 in each direction: bytes read
at time t are written at t + RTT/2, in order, with no bandwidth limit (the
delay is a deadline per chunk, never added per chunk, so a stream of chunks
is delayed by RTT/2 as a whole, not by RTT/2 times the number of chunks).
A request-reply exchange through the proxy therefore costs one RTT more than
direct.  Only the TCP handshake is not delayed (connect() to the proxy
returns at once; the server's greeting is delayed as any other byte).

Accuracy: a chunk goes out when the event loop's timer fires, which on a
busy machine is a few tenths of a millisecond late per direction (measured
here: median 0.35 ms per hop with the machine's two cores shared), so a
50 ms round trip measures about 51 ms; scripts/bench prints the measured
figure beside its table.

End of stream is forwarded like data: when one side shuts down or closes,
the other side's write half is shut down RTT/2 later, and the connection is
closed once both directions have ended; a reset (or a failed write) aborts
both sides after the delay.  Many concurrent connections are fine (it is one
asyncio event loop with no per-byte work: a chunk is queued with its
deadline, and one timer per direction writes every chunk that is due).

Prints exactly one line, ``READY <port>``, on stdout once it listens; with
--stats, one line of totals to stderr on exit.  Stops on SIGTERM/SIGINT/
SIGHUP, when stdin reaches EOF (with --exit-on-stdin-eof) and when its
parent process goes away.

Its own cost, measured with smtp-source (30 KB messages, 2 cores; see
scripts/bench --proxy-overhead): at --rtt-ms 0 it forwards far more than a
50 ms run can ask of it (16 connections × 20 messages/s × 30 KB ≈ 10 MB/s),
and at 50 ms smtp-source sees the lockstep figure (four round trips per
message, about 4.8 messages/s per connection).
"""

import argparse
import asyncio
import collections
import os
import signal
import socket
import sys
import threading

HOST = "127.0.0.1"  # never anything else
HIGH_WATER = 4 * 1024 * 1024

_EOF = object()
_RESET = object()


class Stats:
    connections = 0
    bytes_up = 0
    bytes_down = 0


class Direction:
    """Bytes from one transport, written to another after `delay` seconds."""

    def __init__(self, loop, delay, conn, name):
        self.loop = loop
        self.delay = delay
        self.conn = conn
        self.name = name
        self.dst = None            # transport, once known
        self.queue = collections.deque()  # (deadline, bytes | _EOF | _RESET)
        self.timer = None
        self.ended = False         # EOF/reset delivered to dst

    def push(self, item):
        deadline = self.loop.time() + self.delay
        if self.delay <= 0 and not self.queue and self.dst is not None:
            self._deliver(item)
            return
        self.queue.append((deadline, item))
        if self.timer is None and self.dst is not None:
            self.timer = self.loop.call_at(deadline, self._flush)

    def attach(self, dst):
        self.dst = dst
        if self.queue and self.timer is None:
            self.timer = self.loop.call_at(self.queue[0][0], self._flush)

    def _flush(self):
        self.timer = None
        now = self.loop.time()
        chunks = []
        while self.queue and self.queue[0][0] <= now:
            _, item = self.queue.popleft()
            if isinstance(item, bytes):
                chunks.append(item)
                continue
            if chunks:
                self._deliver(b"".join(chunks))
                chunks = []
            self._deliver(item)
        if chunks:
            self._deliver(b"".join(chunks))
        if self.queue and not self.ended:
            self.timer = self.loop.call_at(self.queue[0][0], self._flush)

    def _deliver(self, item):
        if self.ended or self.dst is None:
            return
        if item is _RESET:
            self.ended = True
            self.conn.abort()
        elif item is _EOF:
            self.ended = True
            try:
                if self.dst.can_write_eof():
                    self.dst.write_eof()
            except OSError:
                self.conn.abort()
                return
            self.conn.maybe_close()
        else:
            if self.dst.is_closing():
                return
            self.dst.write(item)
            if self.name == "up":
                Stats.bytes_up += len(item)
            else:
                Stats.bytes_down += len(item)

    def cancel(self):
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.queue.clear()
        self.ended = True


class Side(asyncio.Protocol):
    """One socket of a proxied connection (client side or target side)."""

    def __init__(self, conn, out_dir):
        self.conn = conn
        self.out = out_dir  # the Direction this side's incoming bytes go to
        self.transport = None
        self.ended = False  # EOF or reset seen on this socket

    def connection_made(self, transport):
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport.set_write_buffer_limits(high=HIGH_WATER)

    def data_received(self, data):
        self.out.push(bytes(data))

    def eof_received(self):
        self.ended = True
        self.out.push(_EOF)
        return True  # keep our write half open until the other side ends

    def connection_lost(self, exc):
        if not self.ended and not self.conn.closing:
            self.ended = True
            self.out.push(_RESET if exc is not None else _EOF)

    # Flow control: the socket we write to is full, so stop reading the
    # socket whose bytes fill it (only matters at very high rates).
    def pause_writing(self):
        peer = self.conn.peer_of(self).transport
        if peer is not None and not peer.is_closing():
            peer.pause_reading()

    def resume_writing(self):
        peer = self.conn.peer_of(self).transport
        if peer is not None and not peer.is_closing():
            peer.resume_reading()


class Connection:
    def __init__(self, loop, delay, target):
        self.loop = loop
        self.up = Direction(loop, delay, self, "up")      # client -> target
        self.down = Direction(loop, delay, self, "down")  # target -> client
        self.client = Side(self, self.up)
        self.server = Side(self, self.down)
        self.target = target
        self.closing = False
        self.lost = 0

    def peer_of(self, side):
        return self.server if side is self.client else self.client

    async def open_target(self):
        try:
            await self.loop.create_connection(lambda: self.server, HOST, self.target)
        except OSError as e:
            sys.stderr.write(f"latency_proxy.py: cannot reach {HOST}:{self.target}: {e}\n")
            self.abort()
            return
        self.up.attach(self.server.transport)
        self.down.attach(self.client.transport)
        if not self.client.transport.is_closing():
            self.client.transport.resume_reading()

    def maybe_close(self):
        if self.up.ended and self.down.ended:
            self.close(abort=False)

    def abort(self):
        self.close(abort=True)

    def close(self, abort):
        if self.closing:
            return
        self.closing = True
        for d in (self.up, self.down):
            d.cancel()
        for side in (self.client, self.server):
            t = side.transport
            if t is not None and not t.is_closing():
                t.abort() if abort else t.close()


def main():
    p = argparse.ArgumentParser(description="Delaying TCP proxy (127.0.0.1 only)")
    p.add_argument("--rtt-ms", type=float, required=True,
                   help="round-trip time to add: each direction is delayed by half of it")
    p.add_argument("--target", type=int, required=True, help="port on 127.0.0.1 to forward to")
    p.add_argument("--port", type=int, default=0, help="port to listen on (0 picks a free one)")
    p.add_argument("--exit-on-stdin-eof", action="store_true")
    p.add_argument("--stats", action="store_true", help="print totals to stderr on exit")
    args = p.parse_args()
    if args.rtt_ms < 0:
        p.error("--rtt-ms must be >= 0")
    asyncio.run(serve(args))


async def serve(args):
    loop = asyncio.get_running_loop()
    delay = args.rtt_ms / 2000.0

    def factory():
        conn = Connection(loop, delay, args.target)
        Stats.connections += 1

        class ClientSide(Side):
            def connection_made(self, transport):
                super().connection_made(transport)
                transport.pause_reading()  # until the target is connected
                loop.create_task(conn.open_target())

        conn.client = ClientSide(conn, conn.up)
        return conn.client

    try:
        server = await loop.create_server(factory, host=HOST, port=args.port,
                                          backlog=1024, reuse_address=True)
    except OSError as e:
        sys.stderr.write(f"latency_proxy.py: cannot listen on {HOST}:{args.port}: {e}\n")
        sys.exit(2)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    if args.exit_on_stdin_eof:
        def wait_stdin():
            try:
                while sys.stdin.buffer.read(65536):
                    pass
            except (OSError, ValueError):
                pass
            loop.call_soon_threadsafe(stop.set)
        threading.Thread(target=wait_stdin, daemon=True).start()

    async def watch_parent():
        parent = os.getppid()
        while not stop.is_set():
            await asyncio.sleep(0.5)
            if os.getppid() != parent:
                stop.set()

    watcher = loop.create_task(watch_parent())
    port = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"READY {port}\n")
    sys.stdout.flush()
    await stop.wait()
    watcher.cancel()
    server.close()
    if args.stats:
        sys.stderr.write(f"latency_proxy.py: {Stats.connections} connections, "
                         f"{Stats.bytes_up} bytes up, {Stats.bytes_down} bytes down\n")


if __name__ == "__main__":
    main()
