"""An asyncio serve() worker running pool_handler.handle (as an async handler for ``sleep``,
so that the loop serves one request at a time while awaiting)."""

import asyncio

from pool_handler import handle

from worker_process import serve


async def handler(request: bytes) -> bytes:
    if request.startswith(b"sleep:"):
        seconds, _, payload = request[6:].partition(b":")
        await asyncio.sleep(float(seconds))
        return payload
    return handle(request)


asyncio.run(serve(handler))
