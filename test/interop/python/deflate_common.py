"""Shared by deflate_server.py and deflate_client.py (the permessage-deflate interop peers).

Both peers print one JSON object per line on stdout and echo every message they receive.
"""

import json
import sys

from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def factory_kwargs(config):
    """Keyword arguments of a PerMessageDeflateFactory from a JSON object."""
    kwargs = {}
    for key in (
        "server_no_context_takeover",
        "client_no_context_takeover",
        "server_max_window_bits",
        "client_max_window_bits",
        "require_client_max_window_bits",
    ):
        if key in config:
            kwargs[key] = config[key]
    if "mem_level" in config or "level" in config:
        settings = {}
        if "mem_level" in config:
            settings["memLevel"] = config["mem_level"]
        if "level" in config:
            settings["level"] = config["level"]
        kwargs["compress_settings"] = settings
    return kwargs


def server_extensions(config):
    if config is None:
        return None  # websockets' own default (window 12 bits both ways, memLevel 5)
    return [ServerPerMessageDeflateFactory(**factory_kwargs(config))]


def client_extensions(config):
    if config is None:
        return None
    return [ClientPerMessageDeflateFactory(**factory_kwargs(config))]


def negotiated(ws):
    """The agreed extension as websockets sees it: header and per-side parameters."""
    out = {
        "header": ws.response_headers.get("Sec-WebSocket-Extensions"),
        "offer": ws.request_headers.get("Sec-WebSocket-Extensions"),
        "deflate": None,
    }
    for ext in ws.extensions:
        if isinstance(ext, PerMessageDeflate):
            out["deflate"] = {
                "remote_no_context_takeover": ext.remote_no_context_takeover,
                "local_no_context_takeover": ext.local_no_context_takeover,
                "remote_max_window_bits": ext.remote_max_window_bits,
                "local_max_window_bits": ext.local_max_window_bits,
            }
    return out


def thirds(data):
    n = len(data)
    a, b = n // 3, (2 * n) // 3
    return [data[:a], data[a:b], data[b:]]


async def echo(ws, fragmented):
    """Sends every message back, as three fragments when asked; returns at close."""
    count = 0
    async for message in ws:
        if fragmented:
            await ws.send(thirds(message))
        else:
            await ws.send(message)
        count += 1
    return count
