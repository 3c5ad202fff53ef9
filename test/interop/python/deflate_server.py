"""websockets (legacy API) echo server with permessage-deflate, on an ephemeral port.

Usage: deflate_server.py CONFIG_JSON   ("null" for websockets' defaults)
Prints {"event": "listening", "port": N}, then per connection {"event": "connection", ...}
with the negotiated parameters; echoes every message (as three fragments on /frag).
Exits when stdin is closed.
"""

import asyncio
import json
import sys

import websockets
from deflate_common import echo, emit, negotiated, server_extensions


async def main():
    config = json.loads(sys.argv[1])

    async def handler(ws, path=None):
        emit({"event": "connection", "path": ws.path, **negotiated(ws)})
        try:
            count = await echo(ws, ws.path == "/frag")
            emit({"event": "done", "count": count, "code": ws.close_code})
        except websockets.ConnectionClosed as exc:
            emit({"event": "done", "error": str(exc), "code": ws.close_code})

    async with websockets.serve(
        handler,
        "127.0.0.1",
        0,
        extensions=server_extensions(config),
        compression="deflate",
        max_size=8 * 2**20,
        ping_interval=None,
        close_timeout=3,
    ) as server:
        emit({"event": "listening", "port": server.sockets[0].getsockname()[1]})
        # Run until the test closes our stdin.
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


asyncio.run(main())
