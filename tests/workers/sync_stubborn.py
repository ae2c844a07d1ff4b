"""A blocking worker that ignores the end of the parent's stream and keeps sleeping; with
argv[1] == ``ignore-term`` it also ignores SIGTERM. Sends ``b"ready"`` once set up."""

import signal
import sys
import time

from worker_process.sync import connect

if sys.argv[1] == "ignore-term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
conn = connect()
conn.send(b"ready")
time.sleep(60)
