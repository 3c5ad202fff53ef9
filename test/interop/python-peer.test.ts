/**
 * Interop with the Python `websockets` library (Debian's python3-websockets 10.4, legacy
 * asyncio API) run by /usr/bin/python3: python/client.py against our server, our client
 * against python/server.py. The scripts obey JSON-line commands (see python/common.py).
 */
import { randomBytes } from 'node:crypto';
import type { ClientOptions, WebSocket } from '@wskit/core';
import { describe, expect, it } from 'vitest';
import { resourcesPerTest } from '../support/clients.js';
import {
  b64,
  mixedText,
  type OurServer,
  openOurClient,
  type PyMessage,
  PythonPeer,
  patternBytes,
  patternText,
  pingEvents,
  pythonWebsockets,
  SYSTEM_PYTHON,
  sha256,
  startServer,
  type Transport,
  takeFrames,
  within,
} from './helpers.js';

const KiB = 1024;
const MiB = 1024 * 1024;
/** Both libraries' default limit is 1 MiB: the largest case sits exactly on it. */
const SIZES = [0, 125, 126, 64 * KiB, MiB];
const T: Transport = { name: 'ws:// on 127.0.0.1', host: '127.0.0.1', secure: false };

const python = pythonWebsockets();
const available = python.version !== null;
if (!available) {
  const why =
    `${SYSTEM_PYTHON} cannot import websockets (${python.problem ?? 'unknown error'}); ` +
    'install it with: apt-get install -y python3-websockets';
  if (process.env.CI) {
    describe('python websockets', () => {
      it(`is importable by ${SYSTEM_PYTHON}`, () => {
        throw new Error(why);
      });
    });
  } else {
    console.log(`[interop] SKIPPING the Python interop suite: ${why}`);
  }
}

const res = resourcesPerTest((err) => console.warn('[interop] cleanup failed:', err));

/** What python/common.py reports for a message it received. */
function described(type: 'text' | 'binary', data: Buffer | string): PyMessage {
  const bytes = Buffer.from(data);
  return { type, size: bytes.length, sha256: sha256(bytes) };
}

const fromB64 = (value: unknown): string => Buffer.from(String(value), 'base64').toString('utf8');

/** Two messages we send in fragments (server or client alike). */
async function sendFragmented(ws: WebSocket): Promise<void> {
  await ws.send('frag', { fin: false });
  await ws.send('men', { fin: false });
  await ws.send('ted ✓', { fin: true });
  await ws.send(Buffer.from([1, 2]), { fin: false });
  await ws.send(Buffer.from([3]), { fin: true });
}

/**
 * The test of both sides: python sends two messages in fragments (from async iterators);
 * our side sees every frame and reassembles the messages.
 */
async function reassemblePythonFragments(ours: WebSocket, py: PythonPeer): Promise<void> {
  const frames = await takeFrames(ours, 7, async () => {
    await py.call('send_fragments', { parts: [{ text: 'ab' }, { text: 'cd' }, { text: 'ef ✓' }] });
    await py.call('send_fragments', {
      parts: [{ b64: b64(Buffer.from([7])) }, { b64: b64(Buffer.from([8, 9])) }],
    });
  });
  // websockets can't know which item is the last: it ends with an empty final frame.
  expect(frames).toEqual([
    [1, false],
    [0, false],
    [0, false],
    [0, true],
    [2, false],
    [0, false],
    [0, true],
  ]);
  const m1 = await ours.receive();
  expect([m1?.type, m1?.text()]).toEqual(['text', 'abcdef ✓']);
  const m2 = await ours.receive();
  expect([m2?.type, [...(m2?.data ?? [])]]).toEqual(['binary', [7, 8, 9]]);
}

describe.skipIf(!available)(`python websockets ${python.version ?? ''}`, () => {
  // ---- python client, our server ---------------------------------------------------------

  describe('python client -> our server', () => {
    async function ourServer(route: Parameters<typeof startServer>[2] = {}): Promise<OurServer> {
      const srv = await startServer(T, {}, route);
      res.add(() => srv.close());
      return srv;
    }

    async function pyClient(url: string, args: string[] = []): Promise<{ py: PythonPeer; open: PyMessage }> {
      const py = PythonPeer.start('client', [url, ...args], res);
      const first = await py.event(['open', 'error']);
      if (first.event !== 'open') throw new Error(`python could not connect: ${String(first.message)}`);
      return { py, open: first };
    }

    /** Our server, a python client on its '/probe' route, and our side of that connection. */
    async function pyClientOnProbe(): Promise<{ py: PythonPeer; sws: WebSocket }> {
      const srv = await ourServer();
      const { py } = await pyClient(srv.url('/probe'));
      const { ws: sws } = await srv.connections.shift();
      return { py, sws };
    }

    it('echoes text (with non-ASCII) and binary messages', async () => {
      const srv = await ourServer();
      const { py } = await pyClient(srv.url('/echo'));
      const text = await py.call('echo', { text: 'héllo ✓ wörld 😀' });
      expect(text).toMatchObject({ equal: true, ...described('text', 'héllo ✓ wörld 😀') });
      const bin = Buffer.from([0, 1, 2, 0x7f, 0x80, 0xff]);
      expect(await py.call('echo', { b64: b64(bin) })).toMatchObject({
        equal: true,
        ...described('binary', bin),
      });
      expect(srv.received).toEqual([
        { type: 'text', size: Buffer.byteLength('héllo ✓ wörld 😀'), sha256: sha256('héllo ✓ wörld 😀') },
        { type: 'binary', size: 6, sha256: sha256(bin) },
      ]);
    });

    it.each(SIZES)('%d bytes, text and binary, both directions byte-exact', async (size) => {
      const srv = await ourServer();
      const { py } = await pyClient(srv.url('/echo'));
      const { ws: sws } = await srv.connections.shift();
      // python -> our echo route -> python (python compares), and what the route received.
      expect(await py.call('echo', { type: 'binary', size })).toMatchObject({
        equal: true,
        ...described('binary', patternBytes(size)),
      });
      expect(await py.call('echo', { type: 'text', size })).toMatchObject({
        equal: true,
        ...described('text', patternText(size)),
      });
      expect(srv.received).toEqual([
        { type: 'binary', size, sha256: sha256(patternBytes(size)) },
        { type: 'text', size, sha256: sha256(patternText(size)) },
      ]);
      // our server -> python, with data python did not make up.
      const bin = randomBytes(size);
      const text = mixedText(size);
      await sws.send(bin);
      expect(await py.call('recv')).toMatchObject(described('binary', bin));
      await sws.send(text);
      expect(await py.call('recv')).toMatchObject(described('text', text));
    });

    it('reassembles fragmented messages from our server', async () => {
      const { py, sws } = await pyClientOnProbe();
      await sendFragmented(sws);
      await sws.send('after');
      const m1 = await py.call('recv');
      expect(m1).toMatchObject(described('text', 'fragmented ✓'));
      expect(fromB64(m1.b64)).toBe('fragmented ✓');
      expect(await py.call('recv')).toMatchObject(described('binary', Buffer.from([1, 2, 3])));
      expect(await py.call('recv')).toMatchObject(described('text', 'after'));
    });

    it('reassembles messages python sends fragmented (async iterator)', async () => {
      const { py, sws } = await pyClientOnProbe();
      await reassemblePythonFragments(sws, py);
    });

    it('answers python pings (our ping event fires) and python answers ours', async () => {
      const { py, sws } = await pyClientOnProbe();
      const pings = pingEvents(sws);
      const reply = await py.call('ping', { data: 'from python' });
      expect(typeof reply.latency).toBe('number');
      expect((await pings.shift()).toString()).toBe('from python');

      const rtt = await within(sws.ping('from node'), 5000, 'our ping()');
      expect(Number.isFinite(rtt) && rtt >= 0).toBe(true);
      expect(sws.rtt).toBe(rtt);
      expect(fromB64((await py.event('ping')).b64)).toBe('from node');
    });

    it.each([
      [1000, ''],
      [1001, 'going away'],
      [4000, 'custom reason ✓'],
    ])('our server closes with %d %j: python sees it, close() resolves cleanly', async (code, reason) => {
      const { py, sws } = await pyClientOnProbe();
      const info = await within(sws.close(code, reason), 5000, 'close()');
      // websockets echoes the Close payload it received.
      expect(info).toEqual({ code, reason, wasClean: true });
      expect(await py.event('closed')).toMatchObject({ code, reason });
    });

    it.each([
      [1000, 'done'],
      [1001, 'bye'],
      [4001, 'app reason ✓'],
    ])('python closes with %d %j: our closed resolves with it, wasClean', async (code, reason) => {
      const { py, sws } = await pyClientOnProbe();
      const reply = await py.call('close', { code, reason });
      expect(reply.close_code).toBe(code); // our echo (RFC 6455 §5.5.1)
      expect(await within(sws.closed, 5000, 'closed')).toEqual({ code, reason, wasClean: true });
      expect(await sws.receive()).toBeNull();
    });

    it('python aborts the TCP connection: 1006 on our side', async () => {
      const { py, sws } = await pyClientOnProbe();
      await py.call('abort');
      expect(await within(sws.closed, 5000, 'closed')).toEqual({ code: 1006, reason: '', wasClean: false });
    });

    it('our terminate(): 1006 at python', async () => {
      const { py, sws } = await pyClientOnProbe();
      sws.terminate();
      expect(await py.event('closed')).toMatchObject({ code: 1006 });
    });

    describe('subprotocols (server protocols: chat.v2, chat.*)', () => {
      const route = { protocols: ['chat.v2', 'chat.*'] };

      it.each([
        ['chat.v1,chat.v2', 'chat.v2'],
        ['chat.v1,chat.x', 'chat.v1'],
      ])('python offers %s: %s is selected', async (offer, expected) => {
        const srv = await ourServer(route);
        const { py, open } = await pyClient(srv.url('/probe'), ['--protocols', offer]);
        const { ws: sws, req } = await srv.connections.shift();
        expect(open.subprotocol).toBe(expected);
        expect(sws.protocol).toBe(expected);
        expect(req.protocols).toEqual(offer.split(','));
        expect((await py.call('info')).subprotocol).toBe(expected);
      });

      it('python offers nothing we speak: connected without a subprotocol', async () => {
        const srv = await ourServer(route);
        const { open } = await pyClient(srv.url('/probe'), ['--protocols', 'superchat']);
        const { ws: sws } = await srv.connections.shift();
        expect(open.subprotocol).toBeNull();
        expect(sws.protocol).toBe('');
      });
    });
  });

  // ---- our client, python server ---------------------------------------------------------

  describe('our client -> python server', () => {
    async function pyServer(args: string[] = []): Promise<{ py: PythonPeer; port: number }> {
      const py = PythonPeer.start('server', args, res);
      const listening = await py.event('listening');
      return { py, port: Number(listening.port) };
    }

    /** Our client connected to a fresh python server; `conn` is python's connection report. */
    async function connected(
      path = '/x',
      args: string[] = [],
      options: ClientOptions = {},
    ): Promise<{ py: PythonPeer; ws: WebSocket; conn: PyMessage }> {
      const { py, port } = await pyServer(args);
      const ws = await openOurClient(`ws://127.0.0.1:${port}${path}`, options, res);
      const conn = await py.event('connection');
      return { py, ws, conn };
    }

    it('exchanges text (with non-ASCII) and binary messages', async () => {
      const { py, ws, conn } = await connected('/room/1?x=y');
      expect(conn.path).toBe('/room/1?x=y');
      await ws.send('héllo ✓ wörld 😀');
      expect(await py.call('recv')).toMatchObject(described('text', 'héllo ✓ wörld 😀'));
      await ws.send(Buffer.from([0, 1, 0xff]));
      expect(await py.call('recv')).toMatchObject(described('binary', Buffer.from([0, 1, 0xff])));
      await py.call('send', { text: 'ça va ✓' });
      const m = await within(ws.receive(), 5000, 'a message');
      expect([m?.type, m?.text()]).toEqual(['text', 'ça va ✓']);
    });

    it.each(SIZES)('%d bytes, text and binary, both directions byte-exact', async (size) => {
      const { py, ws } = await connected();
      const bin = randomBytes(size);
      const text = mixedText(size);
      await ws.send(bin);
      expect(await py.call('recv')).toMatchObject(described('binary', bin));
      await ws.send(text);
      expect(await py.call('recv')).toMatchObject(described('text', text));

      await py.call('send', { type: 'binary', size });
      const b = await within(ws.receive(), 10_000, 'the binary message');
      expect(b?.type).toBe('binary');
      expect(b?.size).toBe(size);
      expect(b?.data.equals(patternBytes(size))).toBe(true);
      await py.call('send', { type: 'text', size });
      const s = await within(ws.receive(), 10_000, 'the text message');
      expect(s?.type).toBe('text');
      expect(s?.size).toBe(size);
      expect(s?.text() === patternText(size)).toBe(true);
    });

    it('python reassembles messages we send fragmented', async () => {
      const { py, ws } = await connected();
      await sendFragmented(ws);
      const m1 = await py.call('recv');
      expect(m1).toMatchObject(described('text', 'fragmented ✓'));
      expect(fromB64(m1.b64)).toBe('fragmented ✓');
      expect(await py.call('recv')).toMatchObject(described('binary', Buffer.from([1, 2, 3])));
    });

    it('reassembles messages the python server sends fragmented', async () => {
      const { py, ws } = await connected();
      await reassemblePythonFragments(ws, py);
    });

    it('ping/pong both ways', async () => {
      const { py, ws } = await connected();
      const pings = pingEvents(ws);
      const reply = await py.call('ping', { data: 'from python' });
      expect(typeof reply.latency).toBe('number');
      expect((await pings.shift()).toString()).toBe('from python');

      const rtt = await within(ws.ping('from node'), 5000, 'our ping()');
      expect(Number.isFinite(rtt) && rtt >= 0).toBe(true);
      expect(fromB64((await py.event('ping')).b64)).toBe('from node');
    });

    it.each([
      [1000, ''],
      [1001, 'going away'],
      [4000, 'custom reason ✓'],
    ])('our client closes with %d %j: python sees it, close() resolves cleanly', async (code, reason) => {
      const { py, ws } = await connected();
      const info = await within(ws.close(code, reason), 5000, 'close()');
      expect(info).toEqual({ code, reason, wasClean: true });
      expect(await py.event('closed')).toMatchObject({ code, reason });
    });

    it.each([
      [1000, 'done'],
      [1001, 'server going away'],
      [4002, 'app reason ✓'],
    ])('the python server closes with %d %j: closed resolves with it, wasClean', async (code, reason) => {
      const { py, ws } = await connected();
      const reply = await py.call('close', { code, reason });
      expect(reply.close_code).toBe(code);
      expect(await within(ws.closed, 5000, 'closed')).toEqual({ code, reason, wasClean: true });
      expect(await ws.receive()).toBeNull();
    });

    it('the python server aborts: 1006 on our side; our terminate(): 1006 at python', async () => {
      const first = await connected();
      await first.py.call('abort');
      expect(await within(first.ws.closed, 5000, 'closed')).toEqual({
        code: 1006,
        reason: '',
        wasClean: false,
      });

      const second = await connected();
      second.ws.terminate();
      expect(await second.py.event('closed')).toMatchObject({ code: 1006 });
    });

    describe('subprotocols', () => {
      it('the python server picks the protocol both speak', async () => {
        const { py, ws, conn } = await connected('/x', ['--protocols', 'x.v3,chat.v2'], {
          protocols: ['chat.v1', 'chat.v2'],
        });
        expect(ws.protocol).toBe('chat.v2');
        expect(conn.subprotocol).toBe('chat.v2');
        expect(conn.offered).toEqual(['chat.v1, chat.v2']);
        expect((await py.call('info')).subprotocol).toBe('chat.v2');
      });

      it('nothing in common: connected without a subprotocol', async () => {
        const { ws, conn } = await connected('/x', ['--protocols', 'x.v3'], { protocols: ['chat.v1'] });
        expect(ws.protocol).toBe('');
        expect(conn.subprotocol).toBeNull();
      });

      it('no offer from us: none selected even though python speaks some', async () => {
        const { ws, conn } = await connected('/x', ['--protocols', 'chat.v1']);
        expect(ws.protocol).toBe('');
        expect(conn.subprotocol).toBeNull();
        expect(conn.offered).toEqual([]);
      });
    });
  });
});
