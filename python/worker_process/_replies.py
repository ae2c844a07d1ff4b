"""The served reply format (spec/requests.md, section 2): a status byte, then the result
(``0x00``) or a JSON error report (``0x01``). Sans-I/O; no asyncio."""

from __future__ import annotations

from ._codec import BytesLike
from ._errors import RemoteError, ReplyFormatError

__all__ = ["REPLY_ERROR", "REPLY_OK", "decode_reply", "encode_error", "encode_result"]

REPLY_OK = 0x00
REPLY_ERROR = 0x01
_OK = bytes((REPLY_OK,))
_ERROR = bytes((REPLY_ERROR,))


def encode_result(result: object) -> bytes:
    """The reply for a handler's return value: bytes-like as is, ``str`` as UTF-8, ``None``
    as nothing.

    Raises:
        TypeError: any other type.
    """
    if isinstance(result, bytes | bytearray | memoryview):
        return _OK + result
    if isinstance(result, str):
        return _OK + result.encode()
    if result is None:
        return _OK
    raise TypeError(
        "a handler must return bytes, bytearray, memoryview, str or None;"
        f" got {type(result).__name__}"
    )


def encode_error(exc: BaseException) -> bytes:
    """The reply reporting that the handler raised ``exc`` (type, message, traceback)."""
    import json
    import traceback

    report = {
        "type": type(exc).__name__,
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
    }
    return _ERROR + json.dumps(report).encode()


def decode_reply(reply: BytesLike) -> bytes:
    """The result a served reply carries.

    Raises:
        RemoteError: the reply reports that the handler raised.
        ReplyFormatError: the reply does not follow the format.
    """
    if not reply:
        raise ReplyFormatError("empty reply: a served reply starts with a status byte")
    status = reply[0]
    if status == REPLY_OK:
        return bytes(reply[1:])
    if status != REPLY_ERROR:
        raise ReplyFormatError(
            f"reply starts with 0x{status:02x}, not a status byte (0x00 or 0x01)"
        )
    import json

    try:
        fields = json.loads(bytes(reply[1:]))
    except ValueError as exc:
        raise ReplyFormatError(f"error reply is not JSON: {exc}") from None
    if not isinstance(fields, dict):
        raise ReplyFormatError("error reply is not a JSON object")

    def text(key: str) -> str:
        value = fields.get(key)
        return value if isinstance(value, str) else ""

    raise RemoteError(text("type") or "Error", text("message"), text("traceback"))
