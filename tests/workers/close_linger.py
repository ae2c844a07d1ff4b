"""Connects, closes its end of the channel at once (without finishing), then keeps running
for argv[1] seconds and exits 0: a worker whose socket is gone while its process is not."""

import sys
import time

from worker_process.sync import connect

conn = connect()
conn.close()
time.sleep(float(sys.argv[1]))
