"""websockets (legacy API) echo client with permessage-deflate.

Usage: deflate_client.py URL CONFIG_JSON [frag]   ("null" config for websockets' defaults)
Prints {"event": "open", ...} with the negotiated parameters, echoes every message (as
three fragments with "frag") until the server closes, then prints {"event": "closed"}.
"""

import asyncio
import json
import sys
import threading

import websockets
from deflate_common import client_extensions, echo, emit, negotiated


async def main():
    url = sys.argv[1]
    config = json.loads(sys.argv[2])
    fragmented = len(sys.argv) > 3 and sys.argv[3] == "frag"
    try:
        ws = await websockets.connect(
            url,
            extensions=client_extensions(config),
            compression="deflate",
            max_size=8 * 2**20,
            ping_interval=None,
            close_timeout=3,
        )
    except Exception as exc:  # the handshake failed: report it
        emit({"event": "failed", "error": f"{type(exc).__name__}: {exc}"})
        return
    emit({"event": "open", **negotiated(ws)})
    # Closing our stdin asks us to close (a daemon thread: it never delays the exit).
    loop = asyncio.get_running_loop()

    def wait_stdin():
        sys.stdin.read()
        loop.call_soon_threadsafe(lambda: asyncio.ensure_future(ws.close(1001, "stdin closed")))

    threading.Thread(target=wait_stdin, daemon=True).start()
    count = 0
    try:
        count = await echo(ws, fragmented)
    except websockets.ConnectionClosed:
        pass
    emit({"event": "closed", "count": count, "code": ws.close_code, "reason": ws.close_reason})


asyncio.run(main())
