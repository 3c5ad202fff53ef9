/**
 * The diagnostics_channel events and wss.stats(), observed in real client-server
 * exchanges over TCP: each channel fires with its documented payload, for accepted and
 * refused handshakes, messages both ways (compressed too), pings, protocol errors,
 * slow-consumer closes, handler errors and abnormal closes (1006).
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import {
  CHANNELS,
  type ConnectionCloseEvent,
  connect,
  type HandshakeRefuseEvent,
  Opcode,
  TRACING_CHANNELS,
  type WebSocket,
} from '@wskit/core';
import { describe, expect, it } from 'vitest';
import { expectRefusal, resourcesPerTest, startWss } from '../../../../test/support/clients.js';
import { closeCode, rawClient, startServer, within } from './raw.js';
import { nextConnection } from './util.js';

const res = resourcesPerTest();

type Name = keyof typeof CHANNELS;
interface Recorded {
  name: Name;
  payload: Record<string, unknown>;
}

/** Records every wskit channel's events, in order, until the test ends. */
function record(): {
  events: Recorded[];
  of: <T = Record<string, unknown>>(name: Name, filter?: (p: Record<string, unknown>) => boolean) => T[];
  next: <T = Record<string, unknown>>(
    name: Name,
    filter?: (p: Record<string, unknown>) => boolean,
  ) => Promise<T>;
} {
  const events: Recorded[] = [];
  const waiters: Array<() => void> = [];
  const subs: Array<[string, (m: unknown) => void]> = [];
  for (const name of Object.keys(CHANNELS) as Name[]) {
    const fn = (payload: unknown) => {
      events.push({ name, payload: payload as Record<string, unknown> });
      for (const w of waiters.splice(0)) w();
    };
    diagnosticsChannel.subscribe(CHANNELS[name], fn);
    subs.push([CHANNELS[name], fn]);
  }
  res.add(() => {
    for (const [channel, fn] of subs) diagnosticsChannel.unsubscribe(channel, fn);
  });
  const of = <T>(name: Name, filter: (p: Record<string, unknown>) => boolean = () => true) =>
    events.filter((e) => e.name === name && filter(e.payload)).map((e) => e.payload as T);
  const next = async <T>(name: Name, filter: (p: Record<string, unknown>) => boolean = () => true) => {
    for (;;) {
      const found = of<T>(name, filter);
      if (found.length > 0) return found[0]!;
      await new Promise<void>((resolve) => waiters.push(resolve));
    }
  };
  return {
    events,
    of,
    next: (name, filter) => within(next(name, filter), 10_000, `a ${name} event`),
  };
}

const serverSide = (p: Record<string, unknown>) => (p.ws as WebSocket).isServer;

describe('diagnostics channels', () => {
  it('follow an accepted connection: handshake, open, messages both ways, close', async () => {
    const rec = record();
    const next = nextConnection((ws) => {
      ws.on('message', (m) => ws.send(m.data, { binary: m.type === 'binary' }).catch(() => {}));
    });
    const { wss, port } = await startWss(
      { '/rooms/*': next.handler },
      { pingInterval: 0, protocols: ['chat.v1'] },
      res,
    );

    const client = await connect(`ws://127.0.0.1:${port}/rooms/7?x=1`, {
      pingInterval: 0,
      protocols: ['chat.v1'],
    });
    res.add(() => client.terminate());
    const server = await next.ws;
    await client.send('hello');
    await client.send(Buffer.from([1, 2, 3]));
    expect((await client.receive())?.text()).toBe('hello');
    expect((await client.receive())?.size).toBe(3);
    await client.close(4000, 'bye');
    const close = await rec.next<ConnectionCloseEvent>('connectionClose', serverSide);

    const start = rec.of('handshakeStart', (p) => p.server === wss);
    expect(start).toHaveLength(1);
    expect((start[0]!.request as { url: string }).url).toBe('/rooms/7?x=1');
    const accept = rec.of('handshakeAccept', (p) => p.server === wss);
    expect(accept).toHaveLength(1);
    expect(accept[0]).toMatchObject({ ws: server, route: '/rooms/*', protocol: 'chat.v1', extensions: '' });
    expect(accept[0]!.duration).toBeGreaterThanOrEqual(0);
    expect(rec.of('connectionOpen', serverSide)).toEqual([
      { ws: server, route: '/rooms/*', transport: 'http/1.1' },
    ]);
    // The client's connection publishes too (route '').
    expect(rec.of('connectionOpen', (p) => p.ws === client)).toEqual([
      { ws: client, route: '', transport: 'http/1.1' },
    ]);

    const mine = (p: Record<string, unknown>) => p.ws === server;
    expect(rec.of('messageReceived', mine)).toEqual([
      { ws: server, type: 'text', size: 5, compressedSize: undefined, fin: true },
      { ws: server, type: 'binary', size: 3, compressedSize: undefined, fin: true },
    ]);
    expect(rec.of('messageSent', mine)).toEqual([
      { ws: server, type: 'text', size: 5, compressedSize: undefined, fin: true },
      { ws: server, type: 'binary', size: 3, compressedSize: undefined, fin: true },
    ]);
    expect(close).toMatchObject({
      ws: server,
      route: '/rooms/*',
      transport: 'http/1.1',
      code: 4000,
      reason: 'bye',
      wasClean: true,
      sentCode: 4000, // the echo of the client's code (RFC 6455 §5.5.1)
      initiator: 'remote',
      effectiveCode: 4000,
      messagesReceived: 2,
      messagesSent: 2,
      bytesReceived: 8,
      bytesSent: 8,
    });
    expect(close.duration).toBeGreaterThan(0);
    // The client's side of the same close: it started it.
    const clientClose = await rec.next<ConnectionCloseEvent>('connectionClose', (p) => p.ws === client);
    expect(clientClose).toMatchObject({ initiator: 'local', sentCode: 4000, effectiveCode: 4000 });
  });

  it('report refusals with their status and reason', async () => {
    const rec = record();
    const { wss, port } = await startServer(res, () => {}, { maxConnections: 1, pingInterval: 0 });
    wss.route('/never', () => {});
    const base = `ws://127.0.0.1:${port}`;
    // Same-origin check: a browser Origin of another host is refused with 403.
    expect((await expectRefusal(`${base}/a`, { origin: 'https://evil.example' })).status).toBe(403);
    const held = await connect(`${base}/b`, { pingInterval: 0 });
    res.add(() => held.terminate());
    expect((await expectRefusal(`${base}/c`)).status).toBe(503);
    await rec.next('handshakeRefuse', (p) => p.status === 503);

    const refusals = rec.of<HandshakeRefuseEvent>('handshakeRefuse', (p) => p.server === wss);
    expect(refusals.map((r) => [r.status, r.reason])).toEqual([
      [403, 'Access denied'],
      [503, 'Too many connections'],
    ]);
    for (const r of refusals) {
      expect(r.request?.url).toMatch(/^\/[ac]$/);
      expect(r.duration).toBeGreaterThanOrEqual(0);
    }
    expect(wss.stats().handshakes).toEqual({ accepted: 1, refused: 2 });
  });

  it('report a protocol error, and the close that follows it', async () => {
    const rec = record();
    const next = nextConnection();
    const { port } = await startServer(res, next.handler, { pingInterval: 0 });
    const raw = await rawClient(res, port);
    const server = await next.ws;
    raw.send({ opcode: Opcode.TEXT, payload: Buffer.from('unmasked'), masked: false }); // RFC 6455 §5.1
    const frame = await raw.nextOf(Opcode.CLOSE);
    expect(closeCode(frame)).toBe(1002);
    const error = await rec.next('protocolError', (p) => p.ws === server);
    expect(error).toMatchObject({ ws: server, code: 1002, reason: 'protocol-error' });
    expect(error.message).toMatch(/mask/i);
    raw.destroy();
    const close = await rec.next<ConnectionCloseEvent>('connectionClose', (p) => p.ws === server);
    expect(close).toMatchObject({
      code: 1006,
      wasClean: false,
      sentCode: 1002,
      initiator: 'local',
      effectiveCode: 1002,
      messagesReceived: 0,
    });
  });

  it('report an abnormal close (1006) when the peer just goes away', async () => {
    const rec = record();
    const next = nextConnection();
    const { wss, port } = await startServer(res, next.handler, { pingInterval: 0 });
    const raw = await rawClient(res, port);
    const server = await next.ws;
    raw.destroy();
    const close = await rec.next<ConnectionCloseEvent>('connectionClose', (p) => p.ws === server);
    expect(close).toMatchObject({
      code: 1006,
      reason: '',
      wasClean: false,
      sentCode: undefined,
      initiator: 'none',
      effectiveCode: 1006,
    });
    expect(wss.stats().closeCodes).toEqual({ 1006: 1 });
  });

  it('report backpressure and the slow-consumer close', async () => {
    const rec = record();
    const next = nextConnection();
    const limit = 64 * 1024;
    const { wss, port } = await startServer(res, next.handler, {
      pingInterval: 0,
      maxBufferedAmount: limit,
      closeTimeout: 60_000,
    });
    const raw = await rawClient(res, port);
    raw.socket.pause(); // reads nothing: the kernel buffers fill, then ours
    const server = await next.ws;
    const chunk = Buffer.alloc(16 * 1024, 1);
    const slow = rec.next('backpressure', (p) => p.ws === server && p.kind === 'slow-consumer');
    while (server.readyState === 1) {
      server.send(chunk).catch(() => {});
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    expect(await slow).toMatchObject({ ws: server, kind: 'slow-consumer', action: 'close', limit });
    expect((await slow).bufferedAmount as number).toBeGreaterThan(limit);
    const highWater = rec.of('backpressure', (p) => p.ws === server && p.kind === 'high-water');
    expect(highWater.length).toBeGreaterThan(0);
    expect(highWater[0]).toMatchObject({ action: 'wait', limit: expect.any(Number) });
    raw.destroy(); // never reads the Close: the connection ends without the handshake
    const close = await rec.next<ConnectionCloseEvent>('connectionClose', (p) => p.ws === server);
    expect(close).toMatchObject({ code: 1006, sentCode: 1008, initiator: 'local', effectiveCode: 1008 });
    expect(close.messagesSent).toBeGreaterThan(0);
    expect(wss.stats().closeCodes).toEqual({ 1008: 1 });
  });

  it('report ping round trips and handler errors', async () => {
    const rec = record();
    const next = nextConnection((ws) => {
      ws.on('message', () => {
        throw new Error('boom');
      });
    });
    const { port } = await startServer(res, next.handler, { pingInterval: 0 });
    const client = await connect(`ws://127.0.0.1:${port}/`, { pingInterval: 0 });
    res.add(() => client.terminate());
    const server = await next.ws;
    const rtt = await server.ping();
    expect(await rec.next('pingRtt', (p) => p.ws === server)).toEqual({ ws: server, rtt });
    await client.send('x');
    const failure = await rec.next('handlerError', (p) => p.ws === server);
    expect((failure.error as Error).message).toBe('boom');
    expect((await client.closed).code).toBe(1011);
    const close = await rec.next<ConnectionCloseEvent>('connectionClose', (p) => p.ws === server);
    expect(close).toMatchObject({ initiator: 'local', sentCode: 1011, effectiveCode: 1011 });
  });

  it('give compressed sizes with permessage-deflate', async () => {
    const rec = record();
    const next = nextConnection((ws) => {
      ws.on('message', (m) => ws.send(m.text()).catch(() => {}));
    });
    const { port } = await startServer(res, next.handler, { pingInterval: 0, perMessageDeflate: true });
    const client = await connect(`ws://127.0.0.1:${port}/`, { pingInterval: 0, perMessageDeflate: true });
    res.add(() => client.terminate());
    const server = await next.ws;
    const text = 'abcdefgh'.repeat(1000);
    await client.send(text);
    expect((await client.receive())?.text()).toBe(text);
    const received = await rec.next('messageReceived', (p) => p.ws === server);
    const sent = await rec.next('messageSent', (p) => p.ws === server);
    for (const e of [received, sent]) {
      expect(e.size).toBe(8000);
      expect(e.compressedSize).toBeGreaterThan(0);
      expect(e.compressedSize).toBeLessThan(500);
    }
  });
});

describe('tracing channels', () => {
  it('wrap the handshake (start, then asyncEnd with the connection or null)', async () => {
    const seen: Array<[string, Record<string, unknown>]> = [];
    const tc = diagnosticsChannel.tracingChannel(TRACING_CHANNELS.handshake);
    const handlers = {
      start: (c: unknown) => seen.push(['start', { ...(c as object) }]),
      end: () => {},
      asyncStart: () => {},
      asyncEnd: (c: unknown) => seen.push(['asyncEnd', { ...(c as object) }]),
      error: (c: unknown) => seen.push(['error', { ...(c as object) }]),
    };
    tc.subscribe(handlers);
    res.add(() => tc.unsubscribe(handlers));
    const next = nextConnection();
    const { wss, port } = await startServer(res, next.handler, { pingInterval: 0 });
    const client = await connect(`ws://127.0.0.1:${port}/ok`, { pingInterval: 0 });
    res.add(() => client.terminate());
    const server = await next.ws;
    await expectRefusal(`ws://127.0.0.1:${port}/no`, { origin: 'https://elsewhere.example' });
    await within(
      (async () => {
        while (seen.filter(([k]) => k === 'asyncEnd').length < 2) await new Promise((r) => setImmediate(r));
      })(),
      5000,
      'two handshakes to end',
    );
    expect(seen.map(([k, c]) => [k, (c.request as { url: string }).url, c.server === wss])).toEqual([
      ['start', '/ok', true],
      ['asyncEnd', '/ok', true],
      ['start', '/no', true],
      ['asyncEnd', '/no', true],
    ]);
    expect(seen[1]![1].result).toBe(server);
    expect(seen[3]![1].result).toBe(null);
  });

  it("wrap 'message' listeners and consume() handlers", async () => {
    const seen: string[] = [];
    const tc = diagnosticsChannel.tracingChannel(TRACING_CHANNELS.message);
    const label = (c: unknown) => {
      const ctx = c as { via: string; message: { text(): string } };
      return `${ctx.via}:${ctx.message.text()}`;
    };
    const handlers = {
      start: (c: unknown) => seen.push(`start ${label(c)}`),
      end: (c: unknown) => seen.push(`end ${label(c)}`),
      asyncStart: () => {},
      asyncEnd: (c: unknown) => seen.push(`asyncEnd ${label(c)}`),
      error: () => {},
    };
    tc.subscribe(handlers);
    res.add(() => tc.unsubscribe(handlers));
    const { port } = await startServer(
      res,
      (ws, req) => {
        if (req.path === '/listener') {
          ws.on('message', (m) => {
            seen.push(`handle ${m.text()}`);
            ws.send('ok').catch(() => {});
          });
        } else {
          void ws.consume(async (m) => {
            seen.push(`handle ${m.text()}`);
            await ws.send('ok');
          });
        }
      },
      { pingInterval: 0 },
    );
    for (const path of ['listener', 'consume']) {
      const client = await connect(`ws://127.0.0.1:${port}/${path}`, { pingInterval: 0 });
      res.add(() => client.terminate());
      await client.send(path[0]!);
      expect((await client.receive())?.text()).toBe('ok');
      await client.close();
    }
    await within(
      (async () => {
        while (!seen.includes('asyncEnd consume:c')) await new Promise((r) => setImmediate(r));
      })(),
      5000,
      'the consume handler to settle',
    );
    expect(seen.slice(0, 3)).toEqual(['start listener:l', 'handle l', 'end listener:l']);
    expect(seen.slice(3)).toEqual(['start consume:c', 'handle c', 'end consume:c', 'asyncEnd consume:c']);
  });
});

describe('wss.stats()', () => {
  it('counts connections by route and transport, messages, bytes and close codes', async () => {
    const opened: WebSocket[] = [];
    const { wss, port } = await startWss(
      {
        '/chat/*': (ws) => {
          opened.push(ws);
          ws.subscribe('room');
          ws.on('message', (m) => ws.send(m.data, { binary: m.type === 'binary' }).catch(() => {}));
        },
        '/feed': (ws) => {
          opened.push(ws);
        },
      },
      { pingInterval: 0 },
      res,
    );
    const base = `ws://127.0.0.1:${port}`;
    const a = await connect(`${base}/chat/1`, { pingInterval: 0 });
    const b = await connect(`${base}/chat/2`, { pingInterval: 0 });
    const c = await connect(`${base}/feed`, { pingInterval: 0 });
    for (const ws of [a, b, c]) res.add(() => ws.terminate());
    await within(
      (async () => {
        while (opened.length < 3) await new Promise((r) => setImmediate(r));
      })(),
      5000,
      'three connections',
    );
    await a.send('12345');
    expect((await a.receive())?.text()).toBe('12345');
    expect(wss.publish('room', 'news')).toBe(2);
    expect((await a.receive())?.text()).toBe('news');
    expect((await b.receive())?.text()).toBe('news');

    expect(wss.stats()).toEqual({
      connections: 3,
      connectionsByRoute: { '/chat/*': 2, '/feed': 1 },
      connectionsByTransport: { 'http/1.1': 3 },
      handshakes: { accepted: 3, refused: 0 },
      messages: { received: 1, sent: 3 },
      bytes: { received: 5, sent: 13 },
      closed: 0,
      closeCodes: {},
    });
    await c.close(4001);
    b.terminate();
    await within(
      (async () => {
        while (wss.clients.size > 1) await new Promise((r) => setImmediate(r));
      })(),
      5000,
      'two closes',
    );
    expect(wss.stats()).toMatchObject({
      connections: 1,
      connectionsByRoute: { '/chat/*': 1 },
      messages: { received: 1, sent: 3 },
      bytes: { received: 5, sent: 13 },
      closed: 2,
      closeCodes: { 1006: 1, 4001: 1 },
    });
  });
});
