"""A rogue worker: answers the handshake with the byte in argv[1] (hex), then waits."""

import os
import sys

os.read(3, 1)
os.write(3, bytes.fromhex(sys.argv[1]))
os.read(3, 1)
