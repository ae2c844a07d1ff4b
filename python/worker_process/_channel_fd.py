"""Finding the worker's end of the channel on fd 3 (shared by the asyncio and blocking APIs)."""

from __future__ import annotations

import os
import socket
import stat

from ._errors import ChannelUnavailableError

__all__ = ["CHANNEL_FD", "open_channel"]

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
    sock = socket.socket(fileno=CHANNEL_FD)
    if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
        described = f"{sock.family.name}/{sock.type.name}"
        sock.detach()
        raise ChannelUnavailableError(
            f"fd {CHANNEL_FD} is a {described} socket; the channel is an"
            " AF_UNIX stream socket"
        )
    os.set_inheritable(CHANNEL_FD, False)
    return sock
