"""websockets (legacy API) as a client: connects to argv URL, then obeys stdin commands."""

import argparse
import asyncio

import websockets
from common import RecordingClient, command_loop, emit, parse_list, watch_close


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--protocols", default="")
    parser.add_argument("--max-size", type=int, default=2**20)
    args = parser.parse_args()
    try:
        ws = await websockets.connect(
            args.url,
            create_protocol=RecordingClient,
            subprotocols=parse_list(args.protocols),
            max_size=args.max_size,
            ping_interval=None,
            close_timeout=3,
            open_timeout=10,
        )
    except Exception as exc:
        emit({"event": "error", "message": f"{type(exc).__name__}: {exc}"})
        return
    emit({"event": "open", "subprotocol": ws.subprotocol})
    watcher = asyncio.create_task(watch_close(ws))

    async def get_ws():
        return ws

    await command_loop(get_ws)
    await ws.close()
    await watcher


asyncio.run(main())
