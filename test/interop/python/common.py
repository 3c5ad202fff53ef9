"""Shared part of the interop peers: a JSON-lines command loop.

The test (Node) writes one JSON command per line on stdin, {"id": n, "op": ...}; each
command runs as its own task and gets one reply line {"id": n, ...} (or {"id": n,
"error": ...}) on stdout. Things the test did not ask for are reported as event lines,
{"event": name, ...}. Written for the legacy asyncio API of websockets 10.4.
"""

import asyncio
import base64
import hashlib
import json
import sys

from websockets.legacy.client import WebSocketClientProtocol
from websockets.legacy.server import WebSocketServerProtocol

# The binary test pattern has period 251: byte i is (i * 7 + 13) % 251 (helpers.ts agrees).
_BASE = bytes((i * 7 + 13) % 251 for i in range(251))
_ALPHABET = "abcdefghijklmnopqrstuvwxyz"


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def pattern(kind, size):
    if kind == "text":
        return (_ALPHABET * (size // 26 + 1))[:size]
    return (_BASE * (size // 251 + 1))[:size]


def payload(spec):
    """A message from a command: {"text": s}, {"b64": s} or {"type": t, "size": n}."""
    if "text" in spec:
        return spec["text"]
    if "b64" in spec:
        return base64.b64decode(spec["b64"])
    return pattern(spec["type"], spec["size"])


def describe(message):
    data = message.encode("utf-8") if isinstance(message, str) else bytes(message)
    out = {
        "type": "text" if isinstance(message, str) else "binary",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    if len(data) <= 1024:
        out["b64"] = base64.b64encode(data).decode("ascii")
    return out


class _RecordPings:
    """Reports every Ping received: the legacy protocol answers one by calling pong()."""

    async def pong(self, data=b""):
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        emit({"event": "ping", "b64": base64.b64encode(raw).decode("ascii")})
        await super().pong(data)


class RecordingClient(_RecordPings, WebSocketClientProtocol):
    pass


class RecordingServer(_RecordPings, WebSocketServerProtocol):
    pass


async def watch_close(ws):
    await ws.wait_closed()
    emit({"event": "closed", "code": ws.close_code, "reason": ws.close_reason})


async def _fragments(parts):
    for part in parts:
        yield payload(part)
        await asyncio.sleep(0)


async def run(ws, cmd):
    op = cmd["op"]
    if op == "send":
        await ws.send(payload(cmd))
        return {}
    if op == "send_fragments":
        # An async iterable makes websockets send one frame per item (RFC 6455 §5.4).
        await ws.send(_fragments(cmd["parts"]))
        return {}
    if op == "recv":
        return describe(await asyncio.wait_for(ws.recv(), cmd.get("timeout", 10)))
    if op == "echo":
        sent = payload(cmd)
        await ws.send(sent)
        got = await asyncio.wait_for(ws.recv(), cmd.get("timeout", 10))
        return {"equal": got == sent, **describe(got)}
    if op == "ping":
        waiter = await ws.ping(cmd.get("data"))
        latency = await asyncio.wait_for(waiter, cmd.get("timeout", 10))
        return {"latency": latency}
    if op == "close":
        await ws.close(cmd.get("code", 1000), cmd.get("reason", ""))
        return {"close_code": ws.close_code, "close_reason": ws.close_reason}
    if op == "abort":
        ws.transport.abort()
        return {}
    if op == "wait_closed":
        await asyncio.wait_for(ws.wait_closed(), cmd.get("timeout", 10))
        return {"close_code": ws.close_code, "close_reason": ws.close_reason}
    if op == "info":
        return {"subprotocol": ws.subprotocol, "path": ws.path, "open": ws.open}
    raise ValueError(f"unknown op {op!r}")


async def _handle(get_ws, cmd):
    try:
        ws = await get_ws()
        emit({"id": cmd["id"], **(await run(ws, cmd))})
    except Exception as exc:  # reported to the test, which decides
        emit({"id": cmd["id"], "error": f"{type(exc).__name__}: {exc}"})


async def command_loop(get_ws):
    """Runs commands from stdin until {"op": "exit"} or EOF."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    tasks = set()
    while True:
        line = await reader.readline()
        if not line:
            break
        cmd = json.loads(line)
        if cmd["op"] == "exit":
            emit({"id": cmd["id"]})
            break
        task = asyncio.create_task(_handle(get_ws, cmd))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    for task in list(tasks):
        task.cancel()


def parse_list(text):
    return [item for item in text.split(",") if item] if text else None
