"""Finding the worker's end of the channel on fd 3 (shared by the asyncio and blocking APIs)."""

from __future__ import annotations

import _socket
import os
import stat

from ._errors import ChannelUnavailableError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket

__all__ = ["CHANNEL_FD", "open_channel", "open_channel_raw"]

#: The descriptor a worker finds its end of the channel on.
CHANNEL_FD = 3

_KINDS = {
    stat.S_IFREG: "a regular file",
    stat.S_IFDIR: "a directory",
    stat.S_IFCHR: "a character device (a terminal?)",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a pipe",
    stat.S_IFLNK: "a symbolic link",
}


def open_channel() -> socket.socket:
    """The worker's end of the channel: fd 3, checked and made close-on-exec (so the
    worker's own children do not inherit it).

    Raises:
        ChannelUnavailableError: fd 3 is not open, or not an AF_UNIX stream socket.
    """
    import socket

    return socket.socket(fileno=open_channel_raw().detach())


def open_channel_raw() -> _socket.socket:
    """:func:`open_channel` as a plain ``_socket.socket``: the blocking worker uses it, so that
    it starts without importing the ``socket`` module (a few ms).

    Raises:
        ChannelUnavailableError: fd 3 is not open, or not an AF_UNIX stream socket.
    """
    try:
        mode = os.fstat(CHANNEL_FD).st_mode
    except OSError:
        raise ChannelUnavailableError(
            f"fd {CHANNEL_FD} is not open: this process was not started as a worker "
            "(a worker-process parent passes the channel on fd 3)"
        ) from None
    if not stat.S_ISSOCK(mode):
        kind = _KINDS.get(stat.S_IFMT(mode), "not a socket")
        raise ChannelUnavailableError(
            f"fd {CHANNEL_FD} is {kind}, not the channel socket: this process was not started"
            " as a worker, or something else took fd 3"
        )
    sock = _socket.socket(fileno=CHANNEL_FD)
    if sock.family != _socket.AF_UNIX or sock.type != _socket.SOCK_STREAM:
        import socket

        described = f"{socket.AddressFamily(sock.family).name}/{socket.SocketKind(sock.type).name}"
        sock.detach()
        raise ChannelUnavailableError(
            f"fd {CHANNEL_FD} is a {described} socket; the channel is an"
            " AF_UNIX stream socket"
        )
    os.set_inheritable(CHANNEL_FD, False)
    return sock
