"""Reports which heavy modules a blocking worker's start-up imported: connects, then sends
the names (comma-separated) of those found in ``sys.modules``, and finishes."""

import sys

from worker_process.sync import connect

conn = connect()
heavy = ("asyncio", "construct", "typing", "dataclasses", "socket", "threading", "subprocess")
conn.send(",".join(name for name in heavy if name in sys.modules).encode())
conn.finish()
