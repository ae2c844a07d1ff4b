"""A blocking serve() worker running pool_handler.handle."""

from pool_handler import handle

from worker_process.sync import serve

serve(handle)
