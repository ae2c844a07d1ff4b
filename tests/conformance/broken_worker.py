"""A worker that follows the conformance contract except for one deliberate defect, named by
argv[1], so that the runner's tests can check the right scenarios catch it.

Defects:
    none               a correct worker (raw socket + the sans-I/O codec)
    ignore-handshake   answers 0x01 whatever the parent's first byte was
    write-early        writes 0x01 before reading the parent's byte
    delay-empty        holds a zero-length frame until more bytes arrive (the original's bug)
    exit0-on-gone      treats a parent that is gone like a clean end (exit 0)
    lose-on-exit       exits after writing only half of a burst
    hang               reads the handshake byte and never answers
    exit-at-once       exits 1 at once, as a program that cannot load its library does
"""

from __future__ import annotations

import os
import select
import socket
import sys

from worker_process import Decoder, Encoder, ProtocolError, Role

BURST = b"\xffconformance:burst "


def broken(reason: str) -> None:
    sys.stderr.write(f"worker-process: channel to the parent broke: {reason}\n")
    os._exit(1)


def main(defect: str) -> None:
    sock = socket.socket(fileno=3)
    os.set_inheritable(3, False)
    limit = os.environ.get("WORKER_PROCESS_MAX_MESSAGE_SIZE")
    decoder = Decoder(Role.WORKER, max_message_size=int(limit)) if limit else Decoder(
        Role.WORKER)
    encoder = Encoder(Role.WORKER)
    if defect == "write-early":
        sock.sendall(encoder.handshake())
    first = sock.recv(1)
    if defect == "hang":
        select.select([], [], [])
    if defect == "ignore-handshake" and first:
        first = b"\x00"
    try:
        decoder.feed(first)
    except ProtocolError as exc:
        broken(str(exc))
    if not first:
        broken("the parent ended its stream before the handshake")
    if defect != "write-early":
        sock.sendall(encoder.handshake())
    held = 0
    while True:
        data = sock.recv(1 << 20)
        if defect == "delay-empty" and held and data:
            sock.sendall(encoder.frame(b"") * held)
            held = 0
        if not data:
            gone = any(ev & select.POLLHUP for _, ev in _poll(sock))
            try:
                decoder.feed_eof()
            except ProtocolError as exc:
                broken(str(exc))
            if gone and defect != "exit0-on-gone":
                broken("the parent is gone")
            sock.shutdown(socket.SHUT_WR)
            os._exit(0)
        try:
            payloads = decoder.feed_payloads(data)
        except ProtocolError as exc:
            broken(str(exc))
        for index, payload in enumerate(payloads):
            if payload.startswith(BURST):
                count, size = map(int, payload[len(BURST) :].split())
                sent = count // 2 if defect == "lose-on-exit" else count
                for i in range(sent):
                    sock.sendall(encoder.frame(bytes([i % 256]) * size))
                sock.shutdown(socket.SHUT_WR)
                os._exit(0)
            if defect == "delay-empty" and not payload and index == len(payloads) - 1:
                held += 1  # the last frame of the chunk, and empty: wait for more bytes
                continue
            sock.sendall(encoder.frame(payload))


def _poll(sock: socket.socket) -> list[tuple[int, int]]:
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLOUT)
    return poller.poll(0)


if __name__ == "__main__":
    if sys.argv[1] == "exit-at-once":
        sys.exit("cannot load my library")
    main(sys.argv[1])
