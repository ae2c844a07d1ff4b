"""Run without fd 3 (by a test, not by a worker-process parent): imports the package, starts
an event loop whose self-pipe can take fd 3 (a poll()-based selector has no descriptor of its
own), calls ``connect()``, and prints the error's type and message, then ``loop ok`` if the
loop still works afterwards."""

import asyncio
import selectors

from worker_process import ChannelUnavailableError, connect


async def main() -> None:
    try:
        await connect(handshake_timeout=30)
    except ChannelUnavailableError as exc:
        print("ChannelUnavailableError", exc, flush=True)
    else:
        print("connected", flush=True)
    await asyncio.sleep(0)
    print("loop ok", flush=True)


loop = asyncio.SelectorEventLoop(selectors.PollSelector())
try:
    loop.run_until_complete(main())
finally:
    loop.close()
