#!/usr/bin/env python3
"""A real SMTP server for the newsletter test suite (aiosmtpd based).

Listens on 127.0.0.1 only.  Usage:

    smtp_server.py --port 0 --dir DIR [--faults FAULTS.json]
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

    {"t":..., "session":n, "event":"rcpt", "addr":"...", "reply":"451 ..."}
    {"t":..., "session":n, "event":"data", "rcpt_tos":[...],
     "reply":"250 ..."|null, "dropped":bool, "seq":n|null}

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
     "random": {"seed": 1, "p_4xx": 0.0, "p_5xx": 0.0, "p_drop": 0.0}}

A message whose DATA reply is not 2xx is not stored.  With several
recipients in one transaction, DATA faults apply if any recipient matches
(the first matching recipient's reply; the longest matching delay).
Random faults apply to addresses without an explicit fault of that kind and
are deterministic per (seed, address, attempt number), independent of
connection interleaving.
"""

import argparse
import asyncio
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
              "drop_after_data", "delay_data_reply_seconds")


class Faults:
    """Fault plan from a JSON file, reloaded when the file changes."""

    def __init__(self, path):
        self.path = path
        self._stamp = None
        self._raw = None
        self.cfg = self._normalise({})
        self.counters = {}
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
                if not (isinstance(reply, str) and len(reply) >= 3 and reply[:3].isdigit()
                        and reply[0] in "245"):
                    raise ValueError(f"faults.{key}[{addr!r}] must be a string starting "
                                     f"with a 2xx/4xx/5xx code, got {reply!r}")
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


class Handler:
    def __init__(self, out_dir, faults, offer_auth=False):
        self.out_dir = out_dir
        self.offer_auth = offer_auth
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
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        f = self.faults
        f.reload_if_changed()
        addr = _clean(address)
        low = addr.lower()
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
        if reply is None or reply.startswith("2"):
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(rcpt_options)
            reply = reply or "250 OK"
        self._event(server, event="rcpt", addr=addr, reply=reply)
        return reply

    async def handle_DATA(self, server, session, envelope):
        t_end = time.time()
        f = self.faults
        f.reload_if_changed()
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
            self._event(server, event="data", rcpt_tos=rcpts, reply=None, dropped=True, seq=None)
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

        # 3. Store (only if the reply will be 2xx).
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
        self._event(server, event="data", rcpt_tos=rcpts, reply=reply, dropped=False, seq=seq)
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
    handler = Handler(args.dir, faults, offer_auth=bool(args.auth))
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
        def connection_made(self, transport):
            if getattr(self, "conn_id", None) is None:
                self.conn_id = next(conn_ids)
                live.add(self)
            super().connection_made(transport)

        def connection_lost(self, error):
            live.discard(self)
            super().connection_lost(error)

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
