"""Put on ``PYTHONPATH`` by ``tests/test_api_contract_uvloop.py``: makes every asyncio worker
the contract suite starts run on uvloop (``asyncio.run`` asks the policy for its loop)."""

import os

if os.environ.get("WORKER_PROCESS_TEST_LOOP") == "uvloop":
    import asyncio

    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
