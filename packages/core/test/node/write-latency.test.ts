import type { IncomingMessage } from 'node:http';
import { Duplex } from 'node:stream';
import { WebSocketServer } from '@wskit/core';
import { describe, expect, it } from 'vitest';
import { frameBytes } from './raw.js';

/** A socket whose writes are recorded as they reach it, with no network in between. */
class RecordingSocket extends Duplex {
  readonly written: Buffer[] = [];
  override _read(): void {}
  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    this.written.push(chunk);
    done();
  }
  override _writev(chunks: Array<{ chunk: Buffer }>, done: (err?: Error | null) => void): void {
    this.written.push(Buffer.concat(chunks.map((c) => c.chunk)));
    done();
  }
}

function upgradeRequest(): IncomingMessage {
  return {
    method: 'GET',
    url: '/',
    httpVersion: '1.1',
    headers: {
      host: 'localhost',
      upgrade: 'websocket',
      connection: 'Upgrade',
      'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
      'sec-websocket-version': '13',
    },
  } as unknown as IncomingMessage;
}

describe('replies written from a message handler', () => {
  it('reach the socket before the read that asked for them returns, not a tick later', async () => {
    const wss = new WebSocketServer({ pingInterval: 0, connectionTimeout: 0 });
    const socket = new RecordingSocket();
    const ws = await wss.handleUpgrade(upgradeRequest(), socket, Buffer.alloc(0), (conn) => {
      conn.on('message', (m) => void conn.send(m.data, { binary: m.type === 'binary' }));
    });
    expect(ws).not.toBeNull();
    await new Promise((resolve) => setImmediate(resolve)); // the 101 has gone out
    const before = socket.written.length;
    // Two requests in one read: both replies leave in one write, at once.
    const request = frameBytes({ opcode: 1, payload: Buffer.from('ping?') }, true);
    socket.push(Buffer.concat([request, request]));
    expect(socket.written.length).toBe(before + 1);
    const reply = socket.written[before]!;
    expect(reply.toString('latin1')).toBe('\x81\x05ping?\x81\x05ping?');
    ws?.terminate();
    await wss.close();
  });

  it('leave the socket uncorked when something throws out of the read', async () => {
    const failing = {
      debug() {},
      info() {},
      warn() {},
      error() {
        throw new Error('logger down');
      },
    };
    const wss = new WebSocketServer({ pingInterval: 0, connectionTimeout: 0, logger: failing });
    const socket = new RecordingSocket();
    const ws = await wss.handleUpgrade(upgradeRequest(), socket, Buffer.alloc(0), (conn) => {
      conn.on('ping', () => {
        throw new Error('listener failed'); // reported through the logger, which throws
      });
    });
    expect(ws).not.toBeNull();
    await new Promise((resolve) => setImmediate(resolve));
    const ping = frameBytes({ opcode: 9, payload: Buffer.from('p') }, true);
    expect(() => socket.push(ping)).toThrow('logger down');
    expect(socket.writableCorked).toBe(0);
    const before = socket.written.length;
    await ws?.send('still here');
    await new Promise((resolve) => setImmediate(resolve));
    expect(Buffer.concat(socket.written.slice(before)).toString('latin1')).toContain('still here');
    ws?.terminate();
    await wss.close();
  });
});
