"""The asyncio floor for W2, no library: an asyncio BufferedProtocol that echoes whatever
arrives on the socket whose fd is argv[1] (after the one-byte handshake). Frames are not
parsed: in a ping-pong, each read is one whole frame, so this is about the least any asyncio
peer can do per message. A second argument ``uvloop`` runs it on uvloop's event loop."""

import asyncio
import socket
import sys


async def main() -> None:
    sock = socket.socket(fileno=int(sys.argv[1]))
    if sock.recv(1) != b"\x00":
        sys.exit("bad handshake")
    sock.sendall(b"\x01")
    loop = asyncio.get_running_loop()
    ended = loop.create_future()

    class Echo(asyncio.BufferedProtocol):
        def __init__(self) -> None:
            self.buffer = bytearray(1 << 16)

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            # uvloop's transports are not asyncio.Transport subclasses
            self.transport: asyncio.WriteTransport = transport  # type: ignore[assignment]

        def get_buffer(self, sizehint: int) -> bytearray:
            return self.buffer

        def buffer_updated(self, nbytes: int) -> None:
            self.transport.write(self.buffer[:nbytes])

        def eof_received(self) -> None:
            ended.set_result(None)

    await loop.connect_accepted_socket(Echo, sock)
    await ended


if sys.argv[2:] == ["uvloop"]:
    import uvloop

    uvloop.run(main())
else:
    asyncio.run(main())
