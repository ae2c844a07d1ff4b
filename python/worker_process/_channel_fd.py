"""Finding the worker's end of the channel on fd 3, and polling a channel's descriptor
(shared by the asyncio and blocking APIs; builtin modules only)."""

from __future__ import annotations

import _socket
import os
import select
import stat

from ._errors import ChannelUnavailableError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket

__all__ = [
    "CHANNEL_FD",
    "open_channel",
    "open_channel_raw",
    "peer_released",
    "poll_ms",
    "wait_fd",
]

#: The descriptor a worker finds its end of the channel on.
CHANNEL_FD = 3
#: Longer poll() timeouts (about 24 days) are waited as "no limit".
_POLL_MAX = (2**31 - 1) / 1000

_KINDS = {
    stat.S_IFREG: "a regular file",
    stat.S_IFDIR: "a directory",
    stat.S_IFCHR: "a character device (a terminal?)",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a pipe",
    stat.S_IFLNK: "a symbolic link",
}


def poll_ms(timeout: float | None) -> int | None:
    """A ``select.poll`` timeout in milliseconds, rounded up (``None``: wait forever, also
    for ``math.inf`` and anything longer than poll() can express)."""
    if timeout is None or timeout >= _POLL_MAX:
        return None
    if timeout <= 0:
        return 0
    return int(timeout * 1000) + 1


def wait_fd(fd: int, events: int, timeout: float | None) -> int:
    """Wait until ``fd`` has one of ``events`` (or a hang-up/error); return the events seen,
    0 on timeout."""
    poller = select.poll()
    poller.register(fd, events)
    ready = poller.poll(poll_ms(timeout))
    return ready[0][1] if ready else 0


def peer_released(fd: int) -> bool:
    """Whether the peer of the connected socket ``fd`` released its socket (process exit,
    close) rather than half-closing it: POLLHUP is set only then. (Once this side has shut
    its own write side too, both look alike.)"""
    return bool(wait_fd(fd, 0, 0) & select.POLLHUP)


def _identity() -> tuple[int, int] | None:
    try:
        st = os.fstat(CHANNEL_FD)
    except OSError:
        return None
    return st.st_dev, st.st_ino


#: What fd 3 was when the package was imported, before this process could make an event loop
#: (its epoll fd or self-pipe would take the lowest free number: 3, when fd 3 is not open).
#: ``connect()`` accepts only that descriptor.
_AT_IMPORT = _identity()


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
        ChannelUnavailableError: fd 3 is not open, or not an AF_UNIX stream socket, or not
            the descriptor it was when the package was imported (not open then, so another
            descriptor took its number since).
    """
    try:
        st = os.fstat(CHANNEL_FD)
    except OSError:
        st = None
    if st is None or _AT_IMPORT is None:
        raise ChannelUnavailableError(
            f"fd {CHANNEL_FD} is not open: this process was not started as a worker "
            "(a worker-process parent passes the channel on fd 3)"
        )
    if (st.st_dev, st.st_ino) != _AT_IMPORT:
        raise ChannelUnavailableError(
            f"fd {CHANNEL_FD} is not the descriptor this process was started with: it was"
            " closed and another took its number (not the channel)"
        )
    mode = st.st_mode
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
