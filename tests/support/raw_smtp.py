#!/usr/bin/env python3
"""A raw-socket SMTP server (asyncio) for attacks aiosmtpd cannot express.

    raw_smtp.py MODE LOGFILE [ARG...]

Listens on 127.0.0.1 only, prints ``READY <port>`` once, then answers
pipelined commands in order, one reply per line read, except where MODE
misbehaves on purpose.  Every message content the server received (after
the final dot) is logged to LOGFILE as one JSON line:

    {"session": n, "rcpt": "...", "reply": "250 ...", "body": "..."}

Modes:
  normal                 behaves
  extra_after_354        session 1, first DATA: "354" and a spurious "250"
                         in one write; its content is then refused with 554
  close_421_at_mail N    session 1, N-th MAIL: reads the group (MAIL, RCPT,
                         DATA), answers 421 (rate) and closes
  unsubscribe ADDR CSV   after the 354 to ADDR's DATA, waits 150 ms and marks
                         ADDR unsubscribed in CSV (atomic rename)
  reject_all_data        every content is refused with 554 at end of data
  starttls_injection     offers STARTTLS and answers it with 220 plus bytes
  dot_354                session 1: the first final dot is answered "354"
  drip                   every reply is written one byte per TCP segment
  huge_line              session 1, first RCPT: a 10 MB reply line
  endless                session 1, first MAIL: continuation lines forever
  refuse_mail N          session 1, N-th MAIL: 550 (its RCPT and DATA: 503)
"""
import asyncio
import json
import os
import sys

MODE = sys.argv[1]
LOG = sys.argv[2]
ARGS = sys.argv[3:]
sessions = 0


def log(entry):
    with open(LOG, "a") as f:
        f.write(json.dumps(entry) + "\n")


def unsubscribe(addr, csv):
    with open(csv) as f:
        lines = f.read().split("\n")
    out = []
    for line in lines:
        if line.lower().startswith(addr.lower() + ","):
            line = line.replace(",subscribed", ",unsubscribed")
        out.append(line)
    tmp = csv + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(out))
    os.rename(tmp, csv)


async def handle(reader, writer):
    global sessions
    sessions += 1
    session = sessions
    mails = 0
    datas = 0
    rcpt = None
    accepted = False

    async def line():
        data = await reader.readline()
        if not data:
            raise EOFError
        return data

    if MODE == "drip":
        sock = writer.get_extra_info("socket")
        import socket
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pending = []
        plain_write = writer.write
        plain_drain = writer.drain

        def write(data):
            pending.append(data)

        async def drain():
            data = b"".join(pending)
            pending.clear()
            for i in range(len(data)):
                plain_write(data[i:i + 1])
                await plain_drain()
                await asyncio.sleep(0.0005)

        writer.write = write
        writer.drain = drain
    try:
        writer.write(b"220 raw.example.test ESMTP\r\n")
        await writer.drain()
        while True:
            raw = await line()
            cmd = raw.decode("utf-8", "replace").strip()
            verb = cmd.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                ext = b"250-raw.example.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
                if MODE == "starttls_injection":
                    ext += b"250-STARTTLS\r\n"
                writer.write(ext + b"250 SMTPUTF8\r\n")
            elif verb == "STARTTLS":
                writer.write(b"220 Ready to start TLS\r\n250 injected\r\n")
            elif verb == "MAIL":
                mails += 1
                rcpt = None
                accepted = False
                if MODE == "close_421_at_mail" and session == 1 and mails == int(ARGS[0]):
                    await line()  # RCPT
                    await line()  # DATA
                    writer.write(b"421 4.7.28 unusual rate of mail from your IP, closing connection\r\n")
                    await writer.drain()
                    writer.close()
                    return
                if MODE == "refuse_mail" and session == 1 and mails == int(ARGS[0]):
                    writer.write(b"550 5.7.1 Sender refused\r\n")
                    await writer.drain()
                    await line()  # RCPT
                    writer.write(b"503 5.5.1 Error: need MAIL command\r\n")
                    await line()  # DATA
                    writer.write(b"503 5.5.1 Error: need RCPT command\r\n")
                    await writer.drain()
                    continue
                if MODE == "endless" and session == 1 and mails == 1:
                    while True:
                        writer.write(b"250-still going\r\n" * 64)
                        await writer.drain()
                writer.write(b"250 2.1.0 Ok\r\n")
            elif verb == "RCPT":
                rcpt = cmd.split("<", 1)[1].split(">", 1)[0]
                accepted = True
                if MODE == "huge_line" and session == 1:
                    chunk = b"x" * 65536
                    writer.write(b"250 ")
                    for _ in range(160):
                        writer.write(chunk)
                        await writer.drain()
                writer.write(b"250 2.1.5 Ok\r\n")
            elif verb == "DATA":
                if not accepted:
                    writer.write(b"554 5.5.1 No valid recipients\r\n")
                    continue
                datas += 1
                if MODE == "extra_after_354" and session == 1 and datas == 1:
                    writer.write(b"354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 spurious\r\n")
                    final = b"554 5.7.1 Content rejected\r\n"
                else:
                    writer.write(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    final = b"250 2.0.0 Ok: queued\r\n"
                if MODE == "dot_354" and session == 1 and datas == 1:
                    final = b"354 Go ahead\r\n"
                if MODE == "reject_all_data":
                    final = b"554 5.7.1 Content rejected\r\n"
                await writer.drain()
                if MODE == "unsubscribe" and rcpt.lower() == ARGS[0].lower():
                    await asyncio.sleep(0.15)
                    unsubscribe(ARGS[0], ARGS[1])
                body = []
                while True:
                    data = await line()
                    if data == b".\r\n":
                        break
                    if data.startswith(b"."):
                        data = data[1:]
                    body.append(data)
                log({
                    "session": session,
                    "rcpt": rcpt,
                    "reply": final.decode().strip(),
                    "body": b"".join(body).decode("utf-8", "replace"),
                })
                writer.write(final)
                accepted = False
            elif verb == "RSET":
                accepted = False
                writer.write(b"250 2.0.0 Ok\r\n")
            elif verb == "QUIT":
                writer.write(b"221 2.0.0 Bye\r\n")
                await writer.drain()
                writer.close()
                return
            else:
                writer.write(b"502 5.5.2 Error: command not recognized\r\n")
            await writer.drain()
    except (EOFError, ConnectionError):
        pass
    finally:
        writer.close()


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(f"READY {port}", flush=True)
    loop = asyncio.get_running_loop()
    # Exit when the test (our parent) closes stdin.
    await loop.run_in_executor(None, sys.stdin.read)


asyncio.run(main())
