"""The rules for the numbers a caller passes, shared by the asyncio and blocking APIs so that
both accept and refuse exactly the same values with the same message.

- A time in seconds (``handshake_timeout``, ``max_duration``, ``recv``/``close`` timeouts) is
  an ``int`` or ``float`` (not ``bool``), never NaN. ``math.inf`` means no limit; where the
  parameter allows it, so does ``None``. A timeout may be 0 ("only what is there now"); a
  limit that may be off (``max_duration``, a request's or a pool's ``timeout``) must be
  positive.
- ``max_message_size`` is an ``int`` (not ``bool``) from 0 to the wire maximum.
- A count (a pool's ``size``, ``max_retries``, ``concurrency``, a ``window``) is an ``int``
  (not ``bool``) at or above its minimum.

Every violation raises ``ValueError`` (also for a value of the wrong type), before anything
is started, written or waited for. Only builtins are used: the blocking worker imports this.
"""

from __future__ import annotations

from ._wire import MAX_PAYLOAD

__all__ = [
    "check_count",
    "check_handshake_timeout",
    "check_limit",
    "check_max_duration",
    "check_size",
    "check_start",
    "check_timeout",
]

_INF = float("inf")


def _seconds(name: str, value: object) -> float:
    if type(value) is bool or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number of seconds, not {value!r}")
    if value != value:  # NaN
        raise ValueError(f"{name} must be a number of seconds, not NaN")
    return float(value)


def check_timeout(name: str, value: object) -> float:
    """``value`` as a timeout: a number ``>= 0``, returned as a float (``math.inf``: no
    limit). Where ``None`` also means no limit, the caller lets it through first.

    Raises:
        ValueError: ``None``, a bool, a non-number, NaN, or a negative number.
    """
    seconds = _seconds(name, value)
    if seconds < 0:
        raise ValueError(f"{name} must not be negative, not {value!r}")
    return seconds


def check_handshake_timeout(value: object) -> float | None:
    """``handshake_timeout`` (of ``create_worker`` and ``connect``): a number ``>= 0``;
    returned as ``None`` for ``math.inf`` (no limit).

    Raises:
        ValueError: as :func:`check_timeout` (``None`` is refused).
    """
    timeout = check_timeout("handshake_timeout", value)
    return None if timeout == _INF else timeout


def check_start(
    handshake_timeout: object, max_duration: object
) -> tuple[float | None, float | None]:
    """What both ``create_worker`` check before starting anything, returned as ``None``
    where there is no limit.

    Raises:
        ValueError: as :func:`check_handshake_timeout` and :func:`check_max_duration`.
    """
    return check_handshake_timeout(handshake_timeout), check_max_duration(max_duration)


def check_max_duration(value: object) -> float | None:
    """``max_duration``: as :func:`check_limit`.

    Raises:
        ValueError: a bool, a non-number, NaN, zero or a negative number.
    """
    return check_limit("max_duration", value)


def check_limit(name: str, value: object) -> float | None:
    """A limit in seconds that may be off (``max_duration``, a request's or a pool's
    ``timeout``): ``None`` or ``math.inf`` (no limit, returned as ``None``), or a positive
    number of seconds.

    Raises:
        ValueError: a bool, a non-number, NaN, zero or a negative number.
    """
    if value is None:
        return None
    seconds = _seconds(name, value)
    if seconds <= 0:
        raise ValueError(f"{name} must be positive (or None for no limit), not {value!r}")
    return None if seconds == _INF else seconds


def check_size(value: object) -> int:
    """``max_message_size``: an ``int`` from 0 to the wire maximum.

    Raises:
        ValueError: a bool, a non-int, or a value out of range.
    """
    if type(value) is bool or not isinstance(value, int) or not 0 <= value <= MAX_PAYLOAD:
        raise ValueError(f"max_message_size must be an int from 0 to {MAX_PAYLOAD}, not {value!r}")
    return value


def check_count(name: str, value: object, minimum: int) -> int:
    """``value`` checked as a count.

    Raises:
        ValueError: not an integer, or below ``minimum``.
    """
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return value
