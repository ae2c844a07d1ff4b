"""A blocking worker with ``max_message_size=16``: echoes messages until its channel breaks.

argv[1] == ``exit``: the default ``exit_on_broken=True`` (exits 1 with a line on stderr);
argv[1] == ``raise``: ``exit_on_broken=False``; on BrokenResourceError it sends the name of
the ``__cause__``'s type, finishes and exits 0.
"""

import sys

from worker_process import BrokenResourceError
from worker_process.sync import connect

conn = connect(max_message_size=16, exit_on_broken=sys.argv[1] == "exit")
try:
    for message in conn:
        conn.send(message)
except BrokenResourceError as exc:
    conn.send(type(exc.__cause__).__name__.encode())
    conn.finish()
