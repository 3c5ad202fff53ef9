/**
 * Server capacity limits over real sockets: maxConnections, maxPendingHandshakes and
 * maxConnectionsPerIp (503 with Retry-After, before any WebSocket state exists), the
 * request header bound (431) and handshakeTimeout against a slowloris client.
 */
import { type AddressInfo, connect as netConnect, type Socket } from 'node:net';
import { connect, type UpgradeRequest, WebSocketServer } from '@wskit/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  cleanup,
  HOST,
  onCleanup,
  stopServer,
  track,
  waitFor,
  withTimeout,
} from '../../../../test/support/clients.js';
import { advanceUntil, FAKED } from '../../../../test/support/clock.js';
import { addressKey } from '../../src/node/server.js';
import { rawExchange, serve, socketClosed, upgradeRequest } from './util.js';

afterEach(cleanup);
afterEach(() => {
  vi.useRealTimers(); // runs first (afterEach hooks run newest first), for the cleanups
});

/** The fake clock, for a test of handshakeTimeout (created before the server). */
const fakeClock = () => vi.useFakeTimers({ toFake: [...FAKED] });

/** A gate that acceptConnection waits on: `open()` lets every waiting handshake through. */
function gate() {
  const waiting: Array<() => void> = [];
  let calls = 0;
  return {
    acceptConnection: (_req: UpgradeRequest) => {
      calls++;
      return new Promise<boolean>((resolve) => waiting.push(() => resolve(true)));
    },
    open: () => {
      for (const w of waiting.splice(0)) w();
    },
    calls: () => calls,
  };
}

/** Sends an upgrade request on a raw socket and leaves it waiting for its answer. */
function pendingUpgrade(
  port: number,
  host = HOST,
  localAddress?: string,
): { socket: Socket; answer: Promise<string> } {
  const socket = netConnect({ port, host, ...(localAddress ? { localAddress } : {}) });
  onCleanup(() => socket.destroy());
  socket.on('error', () => {});
  let text = '';
  const answer = new Promise<string>((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (text.includes('\r\n\r\n')) resolve(text);
    });
    socket.on('close', () => resolve(text));
  });
  socket.on('connect', () => socket.write(upgradeRequest(`${host}:${port}`).text));
  return { socket, answer };
}

describe('maxConnections', () => {
  it('its 503 carries Retry-After', async () => {
    const wss = new WebSocketServer({ maxConnections: 1, pingInterval: 0 }).route('/*', () => {});
    const port = await serve(wss);
    track(await connect(`ws://${HOST}:${port}/`, { pingInterval: 0 }));
    const res = await rawExchange(port, upgradeRequest(`${HOST}:${port}`).text);
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('5');
    expect(res.body).toBe('Too many connections\n');
  });

  it('retryAfter sets its value (seconds)', async () => {
    const wss = new WebSocketServer({ maxConnections: 0, retryAfter: 30 }).route('/*', () => {});
    const port = await serve(wss);
    const res = await rawExchange(port, upgradeRequest(`${HOST}:${port}`).text);
    expect([res.status, res.headers['retry-after']]).toEqual([503, '30']);
  });
});

describe('maxPendingHandshakes', () => {
  it('answers 503 with Retry-After past the limit, without running acceptConnection; frees slots once answered', async () => {
    const g = gate();
    let handled = 0;
    const wss = new WebSocketServer({
      maxPendingHandshakes: 2,
      acceptConnection: g.acceptConnection,
      pingInterval: 0,
    }).route('/*', () => {
      handled++;
    });
    const port = await serve(wss);
    const first = pendingUpgrade(port);
    const second = pendingUpgrade(port);
    await waitFor(() => g.calls() === 2, 5000, 'two handshakes waiting in acceptConnection');

    const refused = await rawExchange(port, upgradeRequest(`${HOST}:${port}`).text);
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('5');
    expect(refused.body).toBe('Too many handshakes in progress\n');
    // Refused before any state: acceptConnection never saw it, no connection exists.
    expect(g.calls()).toBe(2);
    expect(wss.clients.size).toBe(0);

    g.open();
    expect(await withTimeout(first.answer, 5000)).toMatch(/^HTTP\/1\.1 101 /);
    expect(await withTimeout(second.answer, 5000)).toMatch(/^HTTP\/1\.1 101 /);
    await waitFor(() => handled === 2);
    // Both slots are free again.
    const third = pendingUpgrade(port);
    const fourth = pendingUpgrade(port);
    await waitFor(() => g.calls() === 4, 5000, 'two more handshakes admitted');
    g.open();
    expect(await withTimeout(third.answer, 5000)).toMatch(/^HTTP\/1\.1 101 /);
    expect(await withTimeout(fourth.answer, 5000)).toMatch(/^HTTP\/1\.1 101 /);
  });

  it('a pending handshake dropped by handshakeTimeout frees its slot', async () => {
    fakeClock();
    const g = gate();
    const wss = new WebSocketServer({
      maxPendingHandshakes: 1,
      handshakeTimeout: 200,
      acceptConnection: g.acceptConnection,
    }).route('/*', () => {});
    const port = await serve(wss);
    const stalled = pendingUpgrade(port);
    await waitFor(() => g.calls() === 1);
    const { elapsed } = await advanceUntil(socketClosed(stalled.socket, 5000), { what: 'the drop' });
    expect(elapsed).toBeGreaterThanOrEqual(200 - 10); // the timer may start a step in
    expect(elapsed).toBeLessThanOrEqual(200 + 10);
    const next = pendingUpgrade(port);
    await waitFor(() => g.calls() === 2, 5000, 'the freed slot to admit the next handshake');
    g.open();
    expect(await withTimeout(next.answer, 5000)).toMatch(/^HTTP\/1\.1 101 /);
  });

  it('a negative or NaN limit is a RangeError at construction', () => {
    expect(() => new WebSocketServer({ maxPendingHandshakes: -1 })).toThrow(RangeError);
    expect(() => new WebSocketServer({ maxConnectionsPerIp: Number.NaN })).toThrow(RangeError);
  });
});

describe('maxConnectionsPerIp', () => {
  it('counts open connections and pending handshakes per address; another address is not affected', async () => {
    const g = gate();
    let admitAll = false;
    const wss = new WebSocketServer({
      maxConnectionsPerIp: 2,
      pingInterval: 0,
      acceptConnection: (req) => (admitAll ? true : g.acceptConnection(req)),
    }).route('/*', () => {});
    const port = await serve(wss);
    admitAll = true;
    const open1 = track(await connect(`ws://${HOST}:${port}/`, { pingInterval: 0 }));
    admitAll = false;
    // One open connection plus one pending handshake: the address is at its limit.
    const pending = pendingUpgrade(port);
    await waitFor(() => g.calls() === 1);

    const refused = await rawExchange(port, upgradeRequest(`${HOST}:${port}`).text);
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('5');
    expect(refused.body).toBe('Too many connections from this address\n');
    expect(g.calls()).toBe(1);

    // 127.0.0.2 is another address on the loopback interface (Linux routes all of 127/8 there).
    admitAll = true;
    const fromOther = pendingUpgrade(port, HOST, '127.0.0.2');
    expect(await withTimeout(fromOther.answer, 5000)).toMatch(/^HTTP\/1\.1 101 /);

    // Closing the open connection frees one place for 127.0.0.1.
    await open1.close();
    await waitFor(() => wss.clients.size === 1, 5000, 'the closed connection to leave');
    const again = track(await connect(`ws://${HOST}:${port}/`, { pingInterval: 0 }));
    expect(again.readyState).toBe(1);
    g.open();
    expect(await withTimeout(pending.answer, 5000)).toMatch(/^HTTP\/1\.1 101 /);
  });

  it('counts an IPv4-mapped IPv6 peer as its IPv4 address', async () => {
    const wss = new WebSocketServer({ maxConnectionsPerIp: 1, pingInterval: 0 }).route('/*', () => {});
    // An IPv6 socket bound to the mapped loopback address: peers show up as ::ffff:127.0.0.1.
    await new Promise<void>((resolve) => {
      wss.listen(0, '::ffff:127.0.0.1').then(() => resolve());
    });
    onCleanup(() => stopServer(wss));
    const port = (wss.server!.address() as AddressInfo).port;
    const ws = track(await connect(`ws://${HOST}:${port}/`, { pingInterval: 0 }));
    const seen = [...wss.clients][0]!.remoteAddress;
    expect(seen).toBe('::ffff:127.0.0.1');
    expect(ws.readyState).toBe(1);
    const res = await rawExchange(port, upgradeRequest(`${HOST}:${port}`).text);
    expect(res.status).toBe(503);
    expect(addressKey(seen)).toBe('127.0.0.1');
  });

  it('addressKey normalizes IPv4-mapped IPv6 and case, and leaves other addresses alone', () => {
    expect(addressKey('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(addressKey('::FFFF:10.1.2.3')).toBe('10.1.2.3');
    expect(addressKey('2001:DB8::1')).toBe('2001:db8::1');
    expect(addressKey('10.1.2.3')).toBe('10.1.2.3');
    expect(addressKey('::ffff:abcd')).toBe('::ffff:abcd');
    expect(addressKey(undefined)).toBeUndefined();
  });
});

describe('handshake request bounds (kept)', () => {
  it('a request head larger than the HTTP parser allows (16 KiB) is answered 431', async () => {
    const wss = new WebSocketServer().route('/*', () => {});
    const port = await serve(wss);
    const big = upgradeRequest(`${HOST}:${port}`, { headers: { 'X-Padding': 'a'.repeat(20 * 1024) } }).text;
    const res = await rawExchange(port, big);
    expect(res.status).toBe(431);
    expect(wss.clients.size).toBe(0);
  });

  it('a slowloris client sending its headers byte by byte, slower than handshakeTimeout, is dropped', async () => {
    fakeClock();
    const wss = new WebSocketServer({ handshakeTimeout: 300 }).route('/*', () => {});
    const port = await serve(wss);
    const request = Buffer.from(upgradeRequest(`${HOST}:${port}`).text);
    const socket = netConnect({ port, host: HOST });
    onCleanup(() => socket.destroy());
    socket.on('error', () => {});
    let received = '';
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
    });
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    // The attacker's pace: one byte every 20 ms (the whole head would take seconds).
    let sent = 0;
    const drip = setInterval(() => {
      if (socket.destroyed || sent >= request.length) return;
      socket.write(request.subarray(sent, sent + 1));
      sent++;
    }, 20);
    onCleanup(() => clearInterval(drip));
    // Node's own headersTimeout is 60 s of real time: a drop here is the handshake timer.
    // The fake clock moves one drip at a time, so every byte is sent before the next.
    const { elapsed } = await advanceUntil(socketClosed(socket, 5000), { step: 20, what: 'the drop' });
    clearInterval(drip);
    expect(elapsed).toBeGreaterThanOrEqual(300 - 20);
    expect(elapsed).toBeLessThanOrEqual(300 + 20);
    expect(sent).toBeLessThan(request.length);
    expect(received).toBe('');
    expect(wss.clients.size).toBe(0);
  });
});
