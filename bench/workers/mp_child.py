"""The ``multiprocessing`` peer's child: the modes of ``wp_sync.py`` over a
``multiprocessing.Pipe`` (``send_bytes``/``recv_bytes``)."""

import time
from multiprocessing.connection import Connection


def main(conn: Connection, mode: str, count: int) -> None:
    conn.send_bytes(b"ready")  # the handshake: the parent starts timing after it
    cpu = time.process_time()
    if mode == "ready":
        return
    if mode == "count":
        recv = conn.recv_bytes
        total = 0
        for _ in range(count):
            total += len(recv())
        with open("/proc/self/status") as status:
            hwm = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
        conn.send_bytes(f"{count} {total} {hwm} {time.process_time() - cpu}".encode())
        return
    recv, send = conn.recv_bytes, conn.send_bytes
    while True:
        try:
            message = recv()
        except EOFError:
            return
        send(message)
