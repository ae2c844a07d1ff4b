"""Benchmark worker in plain Python, no library: the same wire protocol by hand on the socket
whose fd is argv[1]. MODE as in ``wp_sync.py``.

The reader is what a careful hand-written one looks like: one ``recv_into`` fills a 256 KiB
buffer with as many frames as are in; a payload of 64 KiB or more gets a ``bytearray`` of its
own, received into in place.
"""

import os
import socket
import struct
import sys
import time
from collections.abc import Iterator

HEADER = struct.Struct(">I")
LARGE = 1 << 16


def messages(sock: socket.socket) -> Iterator[bytes | bytearray]:
    buf = bytearray(1 << 18)
    view = memoryview(buf)
    start = end = 0
    unpack = HEADER.unpack_from
    while True:
        while end - start >= 4:
            (length,) = unpack(buf, start)
            if length >= LARGE:
                payload = bytearray(length)
                have = min(end - start - 4, length)
                payload[:have] = view[start + 4 : start + 4 + have]
                start += 4 + have
                into = memoryview(payload)
                while have < length:
                    got = sock.recv_into(into[have:])
                    if not got:
                        return
                    have += got
                yield payload
                continue
            stop = start + 4 + length
            if stop > end:
                break
            yield buf[start + 4 : stop]
            start = stop
        if start == end:
            start = end = 0
        elif start:
            buf[: end - start] = view[start:end]
            end -= start
            start = 0
        got = sock.recv_into(view[end:])
        if not got:
            return
        end += got


def send(fd: int, payload: bytes | bytearray) -> None:
    data = HEADER.pack(len(payload)) + payload
    while data:
        data = data[os.write(fd, data) :]


fd = int(sys.argv[1])
sock = socket.socket(fileno=fd)
if sock.recv(1) != b"\x00":
    sys.exit("bad handshake")
os.write(fd, b"\x01")
cpu = time.process_time()
mode = sys.argv[2]
if mode == "count":
    count = int(sys.argv[3])
    total = 0
    for seen, message in enumerate(messages(sock), 1):
        total += len(message)
        if seen == count:
            break
    with open("/proc/self/status") as status:
        hwm = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    send(fd, f"{count} {total} {hwm} {time.process_time() - cpu}".encode())
elif mode == "echo":
    for message in messages(sock):
        send(fd, message)
sock.shutdown(socket.SHUT_WR)
