"""websockets (legacy API) as a server on an ephemeral port; obeys stdin commands on the
latest connection."""

import argparse
import asyncio

import websockets
from common import RecordingServer, command_loop, emit, parse_list, watch_close


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--protocols", default="")
    parser.add_argument("--max-size", type=int, default=2**20)
    args = parser.parse_args()
    loop = asyncio.get_running_loop()
    current = loop.create_future()

    async def handler(ws):
        emit(
            {
                "event": "connection",
                "path": ws.path,
                "subprotocol": ws.subprotocol,
                "offered": ws.request_headers.get_all("Sec-WebSocket-Protocol"),
            }
        )
        watcher = asyncio.create_task(watch_close(ws))
        if not current.done():
            current.set_result(ws)
        await watcher

    async def get_ws():
        return await current

    async with websockets.serve(
        handler,
        args.host,
        0,
        create_protocol=RecordingServer,
        subprotocols=parse_list(args.protocols),
        max_size=args.max_size,
        ping_interval=None,
        close_timeout=3,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        emit({"event": "listening", "port": port})
        await command_loop(get_ws)


asyncio.run(main())
