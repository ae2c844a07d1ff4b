"""A blocking worker answering one-for-one, for pools: each msgpack request
``{"i": n, "data": bytes, "sleep": seconds, "crash": path-or-None}`` gets the msgpack reply
``{"i": n, "sha256": hex of data, "pid": pid}``. With ``crash``, the first worker to see the
request creates that file and exits with code 3 without replying; later ones answer.
"""

import hashlib
import os
import time

import msgpack

from worker_process.sync import connect

with connect() as conn:
    for message in conn:
        request = msgpack.unpackb(message, raw=False)
        crash = request.get("crash")
        if crash and not os.path.exists(crash):
            open(crash, "w").close()
            os._exit(3)
        if request.get("sleep"):
            time.sleep(request["sleep"])
        reply = {"i": request["i"], "sha256": hashlib.sha256(request["data"]).hexdigest(),
                 "pid": os.getpid()}
        conn.send(msgpack.packb(reply, use_bin_type=True))
