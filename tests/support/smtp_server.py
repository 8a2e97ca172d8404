#!/usr/bin/env python3
"""A real SMTP server for the newsletter test suite (aiosmtpd based).

Listens on 127.0.0.1 only.  Usage:

    smtp_server.py --port 0 --dir DIR [--faults FAULTS.json] [--no-pipelining]
                   [--starttls --cert C --key K [--require-starttls]]
                   [--implicit-tls --cert C --key K]
                   [--auth USER:PASS]
    smtp_server.py --make-cert DIR      # writes ca.pem, cert.pem, key.pem

It shuts down cleanly on SIGTERM/SIGINT/SIGHUP, when its parent process
goes away, and (with --exit-on-stdin-eof) when stdin is closed.

Once it accepts connections it prints exactly one line, ``READY <port>``,
to stdout.  Nothing else goes to stdout; warnings go to stderr.

Every accepted message is written atomically to ``DIR/<seq>-<uuid>.eml``
(the DATA bytes exactly as received, after dot-unstuffing) and one JSON line
is appended to ``DIR/arrivals.jsonl``:

    {"seq": n, "t": <unix time at end of DATA>, "mail_from": "...",
     "rcpt_tos": [...], "file": "<seq>-<uuid>.eml", "session": <conn id>,
     "mail_options": [...], "rcpt_options": [...], "tls": bool,
     "auth_user": str|null, "size": <bytes>}

``DIR/events.jsonl`` gets one line per RCPT answer and per DATA outcome
(including rejections and dropped connections), so tests can count retries:

    {"t":..., "session":n, "event":"rcpt", "addr":"...", "reply":"451 ...",
     "mail_pipelined":bool, "pipelined":bool}
    {"t":..., "session":n, "event":"data", "rcpt_tos":[...],
     "reply":"250 ..."|null, "dropped":bool, "seq":n|null,
     "next_pipelined":bool}

plus, only when the fault that causes them is configured (see below):

    {"event":"rcpt", ..., "reply":null, "dropped":true}         # drop_at_rcpt
    {"event":"rcpt"|"data", ..., "reply":"454 ...", "fault":"throttle"|"quota"}
    {"event":"mail", "addr":"...", "reply":"454 ...", "fault":"throttle"|"quota"}
    {"event":"connection", "refused":true, "reply":"421 ...", "live":k}
    {"event":"data", "rcpt_tos":[], "reply":"554 5.5.1 ...", "no_rcpt":true, ...}

and, with ``"log_mail": true`` in the faults file, one line per MAIL:

    {"t":..., "session":n, "event":"mail", "addr":"...", "reply":"250 OK",
     "pipelined":bool}

(MAIL lines are opt-in because existing tests count events.jsonl lines.)

PIPELINING (RFC 2920) is advertised in the EHLO reply unless --no-pipelining
is given or the faults file says ``"advertise_pipelining": false``.  aiosmtpd
reads commands one line at a time from its StreamReader, so pipelined input
is answered in order whether or not it is advertised.  The pipelining flags
above say whether the client had already sent more bytes when a command was
handled: ``mail_pipelined`` (on each RCPT event: bytes beyond the MAIL line
were buffered when MAIL was handled), ``pipelined`` (on RCPT and MAIL:
bytes beyond this line were buffered), ``next_pipelined`` (on DATA: bytes
beyond the final dot, i.e. the next transaction, were buffered when the dot
was read).  This is a heuristic: it inspects aiosmtpd's StreamReader buffer,
so it sees only what had arrived at that moment.  A lockstep client can
never make it true (it waits for each reply before writing again); a
pipelining client makes it true as long as its group arrived together, which
on loopback means "in one write" (a group split across TCP segments can read
as false, never the reverse).  Data that arrive before the DATA command's
354 reply are allowed by RFC 2920 but not expected from our client;
``data_cmd_pipelined`` on the DATA event records it (bytes after the DATA
line, buffered before the 354 was sent).

Faults (JSON file, every key optional, re-read whenever the file changes; all
attempt counters restart when its content changes; address keys are
case-insensitive and the key "*" matches any address not listed):

    {"rcpt": {"a@x": "550 5.1.1 No such user", "b@x": "451 4.7.1 Later"},
     "rcpt_times": {"b@x": 2},           # answer b@x's "rcpt" reply only the
                                         # first 2 times, then accept
     "data_reply": {"a@x": "554 5.7.1 Rejected"},   # reply after DATA
     "data_reply_times": {"a@x": 1},     # (optional) only the first N times
     "drop_after_data": {"a@x": 1},      # close without reply, first N times;
                                         # the message is NOT stored
     "delay_data_reply_seconds": {"a@x": 5.0},  # message stored, reply late
     "random": {"seed": 1, "p_4xx": 0.0, "p_5xx": 0.0, "p_drop": 0.0},
     "drop_at_rcpt": {"a@x": 1},         # close without reply when RCPT for
                                         # a@x arrives, first N times (e.g.
                                         # in the middle of a pipelined group)
     "throttle": {"rate": 40, "at": "data", "window": 1,
                  "reply": "454 Throttling failure: Maximum sending rate exceeded."},
     "quota": {"max": 200, "at": "data",
               "reply": "454 Throttling failure: Daily message quota exceeded."},
     "too_many_connections": {"max": 2,
               "reply": "421 4.7.0 Too many connections, try again later"},
     "data_354_without_rcpt": true,
     "advertise_pipelining": true,       # false: leave PIPELINING out of EHLO
     "pipelining_sessions": 2,           # only the first 2 connections offer it
     "log_mail": false}                  # true: a "mail" event per MAIL

throttle: a message beyond ``rate`` messages let through in the last second
(a sliding window over all sessions, of ``window`` seconds, default 1) is answered ``reply`` at
``at`` ("data": after the final dot, the default; "rcpt"; or "mail") and not
stored.  With "data" the messages let through are exactly those accepted;
with "rcpt"/"mail" a message counts when it passes that stage (for "rcpt",
its first RCPT: later RCPTs of the same transaction are not throttled).  quota: once
``max`` messages have passed its stage (default "data": been accepted) since
the plan was loaded, every further one gets ``reply`` (default SES's daily
quota reply).  Both default ``reply`` to SES's wording.  too_many_connections:
a connection beyond ``max`` concurrent ones gets ``reply`` (default 421) as
its greeting and is closed.  data_354_without_rcpt: DATA with a MAIL but no
accepted RCPT is answered 354 (RFC 2920 section 3.1 describes such servers;
aiosmtpd normally answers 503); the content is read and discarded and the
reply after the dot is ``554 5.5.1 No valid recipients``.  A fault given as
a string "reply" must start with a 4xx/5xx code.

A message whose DATA reply is not 2xx is not stored.  With several
recipients in one transaction, DATA faults apply if any recipient matches
(the first matching recipient's reply; the longest matching delay).
Random faults apply to addresses without an explicit fault of that kind and
are deterministic per (seed, address, attempt number), independent of
connection interleaving.
"""

import argparse
import asyncio
import collections
import datetime
import ipaddress
import itertools
import json
import logging
import os
import random
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings

HOST = "127.0.0.1"  # never anything else


def _die(msg, code=2):
    sys.stderr.write(f"smtp_server.py: {msg}\n")
    sys.stderr.flush()
    sys.exit(code)


# --------------------------------------------------------------------------
# Certificates
# --------------------------------------------------------------------------

def make_cert(out_dir, backend="auto"):
    """Write ca.pem, cert.pem (leaf, then CA) and key.pem into out_dir.

    The leaf is for DNS:localhost and IP:127.0.0.1, signed by a throwaway CA
    (rustls rejects a CA certificate used directly as the server cert, so
    clients should trust ca.pem)."""
    os.makedirs(out_dir, exist_ok=True)
    if backend in ("auto", "cryptography"):
        try:
            import cryptography  # noqa: F401
            _make_cert_cryptography(out_dir)
            return
        except ImportError:
            if backend == "cryptography":
                raise
    if shutil.which("openssl") is None:
        raise RuntimeError("neither the python 'cryptography' package nor the "
                           "openssl CLI is available; run scripts/setup-test-deps")
    _make_cert_openssl(out_dir)


def _make_cert_cryptography(out_dir):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    not_before = now - datetime.timedelta(days=1)
    not_after = now + datetime.timedelta(days=3650)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "newsletter test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True,
            crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    pem = serialization.Encoding.PEM
    _write_atomic(os.path.join(out_dir, "ca.pem"), ca_cert.public_bytes(pem))
    _write_atomic(os.path.join(out_dir, "cert.pem"),
                  cert.public_bytes(pem) + ca_cert.public_bytes(pem))
    _write_atomic(os.path.join(out_dir, "key.pem"), key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


def _make_cert_openssl(out_dir):
    with tempfile.TemporaryDirectory() as tmp:
        def run(*args):
            r = subprocess.run(["openssl", *args], cwd=tmp,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            if r.returncode != 0:
                raise RuntimeError("openssl %s failed: %s" % (args[0], r.stderr.decode(errors="replace")))
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        with open(os.path.join(tmp, "ca.ext"), "w") as f:
            f.write("basicConstraints=critical,CA:TRUE,pathlen:0\n"
                    "keyUsage=critical,keyCertSign,cRLSign\n"
                    "subjectKeyIdentifier=hash\n")
        with open(os.path.join(tmp, "leaf.ext"), "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                    "basicConstraints=critical,CA:FALSE\n"
                    "extendedKeyUsage=serverAuth\n"
                    "authorityKeyIdentifier=keyid\n")
        run("req", *ec, "-keyout", "ca.key", "-out", "ca.csr", "-subj", "/CN=newsletter test CA")
        run("x509", "-req", "-in", "ca.csr", "-signkey", "ca.key", "-out", "ca.pem",
            "-days", "3650", "-extfile", "ca.ext")
        run("req", *ec, "-keyout", "key.pem", "-out", "leaf.csr", "-subj", "/CN=localhost")
        run("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-set_serial", str(random.getrandbits(63)), "-out", "leaf.pem",
            "-days", "3650", "-extfile", "leaf.ext")
        rd = lambda n: open(os.path.join(tmp, n), "rb").read()  # noqa: E731
        _write_atomic(os.path.join(out_dir, "ca.pem"), rd("ca.pem"))
        _write_atomic(os.path.join(out_dir, "cert.pem"), rd("leaf.pem") + rd("ca.pem"))
        _write_atomic(os.path.join(out_dir, "key.pem"), rd("key.pem"))


def _write_atomic(path, data):
    d, name = os.path.split(path)
    tmp = os.path.join(d, f".tmp-{name}-{uuid.uuid4().hex}")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


# --------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------

_ADDR_MAPS = ("rcpt", "rcpt_times", "data_reply", "data_reply_times",
              "drop_after_data", "delay_data_reply_seconds", "drop_at_rcpt")

THROTTLE_REPLY = "454 Throttling failure: Maximum sending rate exceeded."
QUOTA_REPLY = "454 Throttling failure: Daily message quota exceeded."
CONNECTIONS_REPLY = "421 4.7.0 Too many connections, try again later"
NO_RCPT_REPLY = "554 5.5.1 No valid recipients"
_STAGES = ("mail", "rcpt", "data")


def _check_reply(where, reply, codes="45"):
    if not (isinstance(reply, str) and len(reply) >= 3 and reply[:3].isdigit()
            and reply[0] in codes):
        raise ValueError(f"{where} must be a string starting with a "
                         f"{'/'.join(c + 'xx' for c in codes)} code, got {reply!r}")
    return reply


def _limit_fault(raw, key, limit_key, default_reply, with_stage):
    """Normalise {"<limit_key>": number, "reply": str, "at": stage}."""
    v = raw.get(key)
    if v is None:
        return None
    if not isinstance(v, dict) or not isinstance(v.get(limit_key), (int, float)) \
            or isinstance(v.get(limit_key), bool) or v[limit_key] < 0:
        raise ValueError(f"faults.{key} must be an object with a number {limit_key!r}")
    out = {limit_key: v[limit_key],
           "reply": _check_reply(f"faults.{key}.reply", v.get("reply", default_reply))}
    if with_stage:
        at = v.get("at", "data")
        if at not in _STAGES:
            raise ValueError(f"faults.{key}.at must be one of {_STAGES}, got {at!r}")
        out["at"] = at
    return out


class Faults:
    """Fault plan from a JSON file, reloaded when the file changes."""

    def __init__(self, path):
        self.path = path
        self._stamp = None
        self._raw = None
        self.cfg = self._normalise({})
        self.counters = {}
        self.passed = collections.deque()
        self.quota_used = 0
        self.reload_if_changed()

    @staticmethod
    def _normalise(raw):
        if not isinstance(raw, dict):
            raise ValueError("faults must be a JSON object")
        cfg = {}
        for key in _ADDR_MAPS:
            m = raw.get(key) or {}
            if not isinstance(m, dict):
                raise ValueError(f"faults.{key} must be an object")
            cfg[key] = {str(k).lower(): v for k, v in m.items()}
        for key in ("rcpt", "data_reply"):
            for addr, reply in cfg[key].items():
                _check_reply(f"faults.{key}[{addr!r}]", reply, "245")
        cfg["throttle"] = _limit_fault(raw, "throttle", "rate", THROTTLE_REPLY, True)
        if cfg["throttle"]:
            window = raw["throttle"].get("window", 1.0)
            if not isinstance(window, (int, float)) or isinstance(window, bool) or window <= 0:
                raise ValueError("faults.throttle.window must be a number of seconds above 0")
            cfg["throttle"]["window"] = float(window)
        cfg["quota"] = _limit_fault(raw, "quota", "max", QUOTA_REPLY, True)
        cfg["too_many_connections"] = _limit_fault(
            raw, "too_many_connections", "max", CONNECTIONS_REPLY, False)
        for key, default in (("data_354_without_rcpt", False),
                             ("advertise_pipelining", True), ("log_mail", False)):
            v = raw.get(key, default)
            if not isinstance(v, bool):
                raise ValueError(f"faults.{key} must be true or false")
            cfg[key] = v
        first = raw.get("pipelining_sessions")
        if first is not None and (isinstance(first, bool) or not isinstance(first, int)):
            raise ValueError("faults.pipelining_sessions must be a whole number")
        cfg["pipelining_sessions"] = first
        rnd = raw.get("random") or {}
        if not isinstance(rnd, dict):
            raise ValueError("faults.random must be an object")
        cfg["random"] = {
            "seed": rnd.get("seed", 0),
            "p_4xx": float(rnd.get("p_4xx", 0.0)),
            "p_5xx": float(rnd.get("p_5xx", 0.0)),
            "p_drop": float(rnd.get("p_drop", 0.0)),
        }
        return cfg

    def reload_if_changed(self):
        if not self.path:
            return
        try:
            st = os.stat(self.path)
            stamp = (st.st_mtime_ns, st.st_ino, st.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp == self._stamp:
            return
        self._stamp = stamp
        if stamp is None:
            raw = {}
        else:
            try:
                with open(self.path, "rb") as f:
                    text = f.read()
                raw = json.loads(text) if text.strip() else {}
                cfg = self._normalise(raw)
            except (OSError, ValueError) as e:
                sys.stderr.write(f"smtp_server.py: ignoring bad faults file {self.path}: {e}\n")
                sys.stderr.flush()
                return
        if raw != self._raw:
            self._raw = raw
            self.cfg = self._normalise(raw)
            self.counters = {}
            self.passed = collections.deque()   # times messages passed the throttle
            self.quota_used = 0

    def limit(self, stage):
        """The throttle/quota reply for a message at ``stage``, or None.

        A message that gets None has passed: it counts toward the sliding
        one-second window and the quota of the faults whose stage this is."""
        th, qu = self.cfg["throttle"], self.cfg["quota"]
        if th and th["at"] == stage:
            now = time.monotonic()
            while self.passed and self.passed[0] <= now - th["window"]:
                self.passed.popleft()
            if len(self.passed) >= th["rate"]:
                return th["reply"], "throttle"
        if qu and qu["at"] == stage and self.quota_used >= qu["max"]:
            return qu["reply"], "quota"
        if th and th["at"] == stage:
            self.passed.append(time.monotonic())
        if qu and qu["at"] == stage:
            self.quota_used += 1
        return None

    def lookup(self, key, addr):
        m = self.cfg[key]
        if addr in m:
            return m[addr]
        return m.get("*")

    def bump(self, kind, addr):
        """Increment and return the attempt number (1-based) of (kind, addr)."""
        k = (kind, addr)
        n = self.counters.get(k, 0) + 1
        self.counters[k] = n
        return n

    def rnd(self, kind, key):
        r = self.cfg["random"]
        if r["p_4xx"] <= 0 and r["p_5xx"] <= 0 and r["p_drop"] <= 0:
            return None
        n = self.bump("random-" + kind, key)
        return random.Random(f"{r['seed']}|{kind}|{key}|{n}").random()


# --------------------------------------------------------------------------
# Handler
# --------------------------------------------------------------------------

def _clean(s):
    """Make a str safe for JSON/UTF-8 (aiosmtpd may hand us surrogate escapes)."""
    if s is None:
        return None
    return s.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _buffered(server):
    """Bytes the client has sent that aiosmtpd has not read yet (the rest of
    the current burst).  Reaches into asyncio.StreamReader's private buffer:
    a heuristic for tests, see the module docstring."""
    reader = getattr(server, "_reader", None)
    buf = getattr(reader, "_buffer", None)
    return len(buf) if buf is not None else 0


class Handler:
    def __init__(self, out_dir, faults, offer_auth=False, pipelining=True):
        self.out_dir = out_dir
        self.offer_auth = offer_auth
        self.pipelining = pipelining
        self.faults = faults
        self.seq = 0
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
        self.arrivals_fd = os.open(os.path.join(out_dir, "arrivals.jsonl"), flags, 0o644)
        self.events_fd = os.open(os.path.join(out_dir, "events.jsonl"), flags, 0o644)

    def close(self):
        for fd in (self.arrivals_fd, self.events_fd):
            try:
                os.close(fd)
            except OSError:
                pass

    @staticmethod
    def _append(fd, obj):
        # One write(2) of a whole line on an O_APPEND fd: readers never see
        # interleaved lines (they may see a last line without its newline).
        os.write(fd, (json.dumps(obj, separators=(",", ":")) + "\n").encode("utf-8"))

    def _event(self, server, **kw):
        kw["t"] = time.time()
        kw["session"] = server.conn_id
        self._append(self.events_fd, kw)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if not self.offer_auth:
            # aiosmtpd always advertises AUTH; a server without --auth must not.
            responses = [r for r in responses if not r[4:].upper().startswith("AUTH")]
        self.faults.reload_if_changed()
        first = self.faults.cfg.get("pipelining_sessions")
        only_first = first is None or server.conn_id <= first
        if self.pipelining and self.faults.cfg["advertise_pipelining"] and only_first:
            # Before the last line ("250 HELP"), which has the space.
            responses = responses[:-1] + ["250-PIPELINING"] + responses[-1:]
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        # Measured before any await: what had arrived beyond the MAIL line.
        pipelined = _buffered(server) > 0
        session.mail_pipelined = pipelined
        f = self.faults
        f.reload_if_changed()
        limited = f.limit("mail")
        if limited is not None:
            reply, fault = limited
            self._event(server, event="mail", addr=_clean(address), reply=reply,
                        fault=fault, pipelined=pipelined)
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        reply = "250 OK"
        if f.cfg["log_mail"]:
            self._event(server, event="mail", addr=_clean(address), reply=reply,
                        pipelined=pipelined)
        return reply

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        pipe = {"mail_pipelined": bool(getattr(session, "mail_pipelined", False)),
                "pipelined": _buffered(server) > 0}
        f = self.faults
        f.reload_if_changed()
        addr = _clean(address)
        low = addr.lower()

        # Close without any reply (the middle of a pipelined group).
        limit = f.lookup("drop_at_rcpt", low)
        if limit is not None and f.bump("drop_at_rcpt", low) <= int(limit):
            self._event(server, event="rcpt", addr=addr, reply=None, dropped=True, **pipe)
            server.transport.abort()
            # connection_lost() cancels this coroutine; never reply.
            await asyncio.get_running_loop().create_future()

        fault = None
        reply = f.lookup("rcpt", low)
        if reply is not None:
            limit = f.lookup("rcpt_times", low)
            n = f.bump("rcpt", low)
            if limit is not None and n > int(limit):
                reply = None
        else:
            r = f.rnd("rcpt", low)
            if r is not None:
                p4, p5 = f.cfg["random"]["p_4xx"], f.cfg["random"]["p_5xx"]
                if r < p4:
                    reply = "451 4.3.0 Random temporary failure (test fault)"
                elif r < p4 + p5:
                    reply = "550 5.1.1 Random permanent failure (test fault)"
        if (reply is None or reply.startswith("2")) and not envelope.rcpt_tos:
            # Throttle/quota count messages, so only a message's first RCPT.
            limited = f.limit("rcpt")
            if limited is not None:
                reply, fault = limited
        if reply is None or reply.startswith("2"):
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(rcpt_options)
            reply = reply or "250 OK"
        extra = {"fault": fault} if fault else {}
        self._event(server, event="rcpt", addr=addr, reply=reply, **pipe, **extra)
        return reply

    async def handle_DATA(self, server, session, envelope):
        t_end = time.time()
        pipe = {"next_pipelined": _buffered(server) > 0,
                "data_cmd_pipelined": bool(getattr(session, "data_cmd_pipelined", False))}
        f = self.faults
        f.reload_if_changed()

        if getattr(session, "data_without_rcpt", False):
            # data_354_without_rcpt: content read after a 354 with no
            # accepted recipient; store nothing.
            session.data_without_rcpt = False
            self._event(server, event="data", rcpt_tos=[], reply=NO_RCPT_REPLY,
                        dropped=False, seq=None, no_rcpt=True, **pipe)
            return NO_RCPT_REPLY

        rcpts = [_clean(a) for a in envelope.rcpt_tos]
        lows = [a.lower() for a in rcpts]

        # 1. Drop the connection without any reply (message not stored).
        drop = False
        for low in lows:
            limit = f.lookup("drop_after_data", low)
            if limit is not None and f.bump("drop", low) <= int(limit):
                drop = True
        if not drop:
            r = f.rnd("drop", ",".join(sorted(lows)))
            if r is not None and r < f.cfg["random"]["p_drop"]:
                drop = True
        if drop:
            self._event(server, event="data", rcpt_tos=rcpts, reply=None, dropped=True, seq=None,
                        **pipe)
            server.transport.abort()
            # connection_lost() cancels this coroutine; never reply.
            await asyncio.get_running_loop().create_future()

        # 2. Configured reply and delay.
        reply = None
        for low in lows:
            r = f.lookup("data_reply", low)
            if r is None:
                continue
            limit = f.lookup("data_reply_times", low)
            if limit is not None and f.bump("data_reply", low) > int(limit):
                continue
            reply = r
            break
        delay = 0.0
        for low in lows:
            d = f.lookup("delay_data_reply_seconds", low)
            if d is not None:
                delay = max(delay, float(d))

        # 3. Throttle and quota (last, so that "let through" means stored).
        fault = None
        if reply is None or reply.startswith("2"):
            limited = f.limit("data")
            if limited is not None:
                reply, fault = limited

        # 4. Store (only if the reply will be 2xx).
        seq = None
        if reply is None or reply.startswith("2"):
            self.seq += 1
            seq = self.seq
            name = f"{seq:06d}-{uuid.uuid4().hex}.eml"
            content = envelope.original_content
            if content is None:
                content = envelope.content
            if isinstance(content, str):
                content = content.encode("utf-8", "surrogateescape")
            tmp = os.path.join(self.out_dir, f".tmp-{name}")
            with open(tmp, "wb") as fh:
                fh.write(content)
            os.replace(tmp, os.path.join(self.out_dir, name))
            ssl_obj = server.transport.get_extra_info("ssl_object") if server.transport else None
            auth_user = None
            if session.auth_data is not None:
                login = getattr(session.auth_data, "login", session.auth_data)
                if isinstance(login, bytes):
                    login = login.decode("utf-8", "replace")
                auth_user = _clean(str(login))
            self._append(self.arrivals_fd, {
                "seq": seq,
                "t": t_end,
                "mail_from": _clean(envelope.mail_from),
                "rcpt_tos": rcpts,
                "file": name,
                "session": server.conn_id,
                "mail_options": [_clean(o) for o in envelope.mail_options],
                "rcpt_options": [_clean(o) for o in envelope.rcpt_options],
                "tls": ssl_obj is not None,
                "auth_user": auth_user,
                "size": len(content),
            })
            reply = reply or f"250 2.0.0 OK queued as {seq}"
        extra = {"fault": fault} if fault else {}
        self._event(server, event="data", rcpt_tos=rcpts, reply=reply, dropped=False, seq=seq,
                    **pipe, **extra)
        if delay > 0:
            await asyncio.sleep(delay)
        return reply


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def _tls_context(args):
    if not (args.cert and args.key):
        _die("--starttls/--implicit-tls need --cert and --key")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    return ctx


async def serve(args):
    from aiosmtpd.smtp import SMTP, AuthResult

    os.makedirs(args.dir, exist_ok=True)
    faults = Faults(args.faults)
    handler = Handler(args.dir, faults, offer_auth=bool(args.auth),
                      pipelining=not args.no_pipelining)
    loop = asyncio.get_running_loop()

    starttls_ctx = _tls_context(args) if args.starttls else None
    implicit_ctx = _tls_context(args) if args.implicit_tls else None

    authenticator = None
    if args.auth:
        user, _, password = args.auth.partition(":")
        want = (user.encode(), password.encode())

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (getattr(auth_data, "login", None), getattr(auth_data, "password", None)) == want
            # handled=False: let aiosmtpd send 535 on failure.
            return AuthResult(success=ok, handled=False,
                              auth_data=auth_data.login if ok else None)

    conn_ids = itertools.count(1)
    live = set()

    class TestSMTP(SMTP):
        refused = False

        def connection_made(self, transport):
            if getattr(self, "conn_id", None) is None:
                self.conn_id = next(conn_ids)
                faults.reload_if_changed()
                tmc = faults.cfg["too_many_connections"]
                if tmc is not None and len(live) >= tmc["max"]:
                    # Greeting-time refusal; aiosmtpd never sees this one.
                    self.refused = True
                    handler._event(self, event="connection", refused=True,
                                   reply=tmc["reply"], live=len(live))
                    transport.write(tmc["reply"].encode() + b"\r\n")
                    transport.close()
                    return
                live.add(self)
            super().connection_made(transport)

        def connection_lost(self, error):
            if self.refused:
                return
            live.discard(self)
            super().connection_lost(error)

        def data_received(self, data):
            if not self.refused:
                super().data_received(data)

        def eof_received(self):
            if self.refused:
                return False
            return super().eof_received()

        async def smtp_DATA(self, arg):
            # Bytes after the DATA line before the 354 went out.
            self.session.data_cmd_pipelined = _buffered(self) > 0
            faults.reload_if_changed()
            self.session.data_without_rcpt = False
            if (faults.cfg["data_354_without_rcpt"] and self.envelope.mail_from
                    and not self.envelope.rcpt_tos and not arg and self.session.host_name
                    and not (self._auth_required and not self.session.authenticated)):
                # aiosmtpd would answer 503: make it read the content instead,
                # and let handle_DATA answer 554 and store nothing.
                self.session.data_without_rcpt = True
                self.envelope.rcpt_tos.append("<none>")
            return await super().smtp_DATA(arg)

        smtp_DATA.__smtp_syntax__ = SMTP.smtp_DATA.__smtp_syntax__  # for HELP

    def factory():
        return TestSMTP(
            handler,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname="localhost",
            ident="newsletter-test-smtp",
            tls_context=starttls_ctx,
            require_starttls=bool(args.require_starttls),
            authenticator=authenticator,
            auth_required=bool(args.auth),
            # Implicit TLS is TLS from the start, which aiosmtpd does not see.
            auth_require_tls=bool(args.auth_require_tls) and not args.implicit_tls,
            loop=loop,
        )

    try:
        server = await loop.create_server(factory, host=HOST, port=args.port,
                                          ssl=implicit_ctx, backlog=1024,
                                          reuse_address=True)
    except OSError as e:
        _die(f"cannot listen on {HOST}:{args.port}: {e}")
    port = server.sockets[0].getsockname()[1]

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)

    async def watch_parent():
        # Exit if the process that started us goes away without stopping us.
        parent = os.getppid()
        while not stop.is_set():
            await asyncio.sleep(0.5)
            if os.getppid() != parent:
                stop.set()

    watcher = asyncio.create_task(watch_parent())
    if args.exit_on_stdin_eof:
        def wait_stdin():
            try:
                while sys.stdin.buffer.read(65536):
                    pass
            except (OSError, ValueError):
                pass
            loop.call_soon_threadsafe(stop.set)
        threading.Thread(target=wait_stdin, daemon=True).start()
    sys.stdout.write(f"READY {port}\n")
    sys.stdout.flush()

    await stop.wait()
    server.close()
    for proto in list(live):
        if proto.transport is not None:
            proto.transport.abort()
    watcher.cancel()
    await asyncio.sleep(0)
    handler.close()


def main():
    p = argparse.ArgumentParser(description="aiosmtpd SMTP server for tests (127.0.0.1 only)")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--dir", help="where messages, arrivals.jsonl and events.jsonl go")
    p.add_argument("--faults", help="JSON fault plan, re-read when it changes")
    p.add_argument("--no-pipelining", action="store_true",
                   help="do not advertise PIPELINING (RFC 2920) in the EHLO reply")
    p.add_argument("--starttls", action="store_true")
    p.add_argument("--require-starttls", action="store_true")
    p.add_argument("--implicit-tls", action="store_true")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--auth", metavar="USER:PASS", help="require AUTH (PLAIN/LOGIN) with these credentials")
    p.add_argument("--auth-require-tls", action="store_true", help="only offer AUTH after TLS")
    p.add_argument("--exit-on-stdin-eof", action="store_true",
                   help="shut down cleanly when stdin reaches EOF (used by the Rust harness)")
    p.add_argument("--make-cert", metavar="DIR", help="write ca.pem, cert.pem, key.pem to DIR and exit")
    p.add_argument("--make-cert-backend", choices=("auto", "cryptography", "openssl"), default="auto")
    args = p.parse_args()

    if args.make_cert:
        try:
            make_cert(args.make_cert, args.make_cert_backend)
        except Exception as e:  # noqa: BLE001
            _die(f"--make-cert failed: {e}", 1)
        return
    if not args.dir:
        _die("--dir is required")
    if args.starttls and args.implicit_tls:
        _die("--starttls and --implicit-tls are exclusive")
    if (args.starttls or args.implicit_tls) and not (args.cert and args.key):
        _die("--starttls/--implicit-tls need --cert and --key")
    if args.require_starttls and not args.starttls:
        _die("--require-starttls needs --starttls")

    try:
        import aiosmtpd  # noqa: F401
    except ImportError as e:
        _die(f"cannot import aiosmtpd ({e}); run scripts/setup-test-deps", 3)

    # Tests offer AUTH without TLS on purpose.
    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="smtp_server.py: %(name)s %(levelname)s %(message)s")
    # aiosmtpd logs every connection reset etc. at INFO/WARNING; keep stderr quiet.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
