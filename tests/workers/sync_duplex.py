"""Sends argv[2] numbered messages while receiving as many from the parent, both at once;
then sends ``b"in order: N"`` (N: how many arrived numbered 0, 1, 2, ... in order) and
finishes.

argv[1]: ``sync`` (blocking API) or ``aio`` (asyncio API).
"""

import sys

count = int(sys.argv[2])


def check(received: list[bytes]) -> bytes:
    in_order = sum(1 for i, m in enumerate(received) if int.from_bytes(m, "big") == i)
    return b"in order: %d" % in_order


if sys.argv[1] == "sync":
    import threading

    from worker_process.sync import connect

    with connect() as conn:

        def send_all() -> None:
            for i in range(count):
                conn.send(i.to_bytes(4, "big"))

        sender = threading.Thread(target=send_all)
        sender.start()
        received = [conn.recv() for _ in range(count)]
        sender.join()
        conn.send(check(received))
else:
    import asyncio

    from worker_process import connect as aconnect

    async def main() -> None:
        async with await aconnect() as conn:

            async def send_all() -> None:
                for i in range(count):
                    await conn.send(i.to_bytes(4, "big"))

            async def recv_all() -> list[bytes]:
                return [await conn.recv() for _ in range(count)]

            _, received = await asyncio.gather(send_all(), recv_all())
            await conn.send(check(received))

    asyncio.run(main())
