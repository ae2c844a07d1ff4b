"""Wire constants, generated from the construct grammar in ``_grammar.py``.

Do not edit: run ``python -m worker_process._grammar --write`` to regenerate.
This module imports nothing, so a worker can start without ``construct``.
"""

#: The byte a parent writes first.
PARENT_HANDSHAKE = 0
#: The byte a worker writes first, in answer.
WORKER_HANDSHAKE = 1
#: ``struct`` format of a frame header (the payload length).
HEADER_FORMAT = '>L'
#: Size of a frame header in bytes.
HEADER_SIZE = 4
#: The largest payload the length field can announce.
MAX_PAYLOAD = 4294967295
