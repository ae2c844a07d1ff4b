"""Does not use the library: answers the handshake, then writes a frame header announcing
argv[1] bytes followed by only argv[2] of them, then exits 0 (argv[3] == ``exit``) or waits
for the parent to close the channel (argv[3] == ``wait``)."""

import os
import sys

os.read(3, 1)
announced, sent = int(sys.argv[1]), int(sys.argv[2])
data = b"\x01" + announced.to_bytes(4, "big") + b"\x5a" * sent
view = memoryview(data)
while view:
    view = view[os.write(3, view) :]
if sys.argv[3] == "wait":
    while os.read(3, 1 << 16):
        pass
