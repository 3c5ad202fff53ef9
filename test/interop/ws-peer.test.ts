/**
 * Interop with the `ws` npm package: our server against the ws client, our client against
 * the ws server, over ws://, wss:// (self-signed certificate made with openssl) and IPv6.
 */
import { randomBytes } from 'node:crypto';
import { type ClientOptions, connect, HandshakeError, type WebSocket } from '@wskit/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type {
  WebSocket as WsClient,
  ClientOptions as WsClientOptions,
  ServerOptions as WsServerOptions,
} from 'ws';
import { checkServerIdentity } from '../../packages/core/src/node/tls-identity.js';
import { generateCert, removeCert, resourcesPerTest, type TestCert } from '../support/clients.js';
import {
  canListenOn,
  mixedText,
  type OurServer,
  openOurClient,
  openWsClient,
  pingEvents,
  sha256,
  startServer,
  startWsClient,
  startWsServer,
  type Transport,
  takeFrames,
  type WsPeer,
  type WsPeerServer,
  type WsServerConnection,
  within,
  withServer,
} from './helpers.js';

const MiB = 1024 * 1024;
const SIZES = [0, 1, 125, 126, 65535, 65536, 16 * MiB];
/**
 * Limits for the 16 MiB cases. maxBufferedAmount keeps its default (16 MiB): a single
 * message larger than that must still go out, since only unread backlog counts.
 */
const BIG = { maxMessageSize: 32 * MiB, maxFrameSize: 32 * MiB };

const ipv6 = await canListenOn('::1');
if (!ipv6) console.log('[interop] ::1 cannot be bound on this machine: the IPv6 cases are SKIPPED');

const TRANSPORTS: Transport[] = [
  { name: 'ws:// on 127.0.0.1', host: '127.0.0.1', secure: false },
  { name: 'wss:// on 127.0.0.1', host: '127.0.0.1', secure: true },
  { name: 'ws:// on [::1]', host: '::1', secure: false },
  { name: 'wss:// on [::1]', host: '::1', secure: true },
];

let cert: TestCert;
beforeAll(() => {
  cert = generateCert();
});
afterAll(() => removeCert(cert));

const res = resourcesPerTest((err) => console.warn('[interop] cleanup failed:', err));

/** Two messages sent in fragments by a ws peer (client or server alike). */
function wsSendsFragmented(ws: WsClient): void {
  ws.send('frag', { fin: false });
  ws.send('men', { fin: false });
  ws.send('ted ✓', { fin: true });
  ws.send(Buffer.from([1, 2]), { binary: true, fin: false });
  ws.send(Buffer.from([3]), { binary: true, fin: true });
}

/** [opcode, fin] of the frames wsSendsFragmented() puts on the wire. */
const WS_FRAGMENTS = [
  [1, false],
  [0, false],
  [0, true],
  [2, false],
  [0, true],
];

/**
 * The test of both sides: we send two fragmented messages with a ping between fragments,
 * then a plain one; the ws peer reassembles them and answers the ping.
 */
async function sendFragmentedAroundAPing(ours: WebSocket, peer: WsPeer): Promise<void> {
  await ours.send('ab', { fin: false });
  const rtt = ours.ping('mid'); // control frames may sit between fragments (RFC 6455 §5.4)
  await ours.send('cd', { fin: false });
  await ours.send('ef ✓', { fin: true });
  await ours.send(Buffer.from([9, 9]), { fin: false });
  await ours.send(Buffer.from([8]), { fin: true });
  await ours.send('next');
  const m1 = await peer.messages.shift();
  expect([m1.binary, m1.data.toString()]).toEqual([false, 'abcdef ✓']);
  const m2 = await peer.messages.shift();
  expect([m2.binary, [...m2.data]]).toEqual([true, [9, 9, 8]]);
  const m3 = await peer.messages.shift();
  expect([m3.binary, m3.data.toString()]).toEqual([false, 'next']);
  expect((await peer.pings.shift()).toString()).toBe('mid');
  expect(await within(rtt, 5000, 'the pong')).toBeGreaterThanOrEqual(0);
}

describe.each(TRANSPORTS)('$name', (t) => {
  const skip = t.host === '::1' && !ipv6;
  // Node 22's own identity check refuses an IPv6 certificate address (it compares "::1"
  // with "0:0:0:0:0:0:0:1" as text); ws uses it as is, so give it ours, as our client does.
  const wsTls = (): WsClientOptions => (t.secure ? { ca: cert.cert, checkServerIdentity } : {});
  const ourTls = (): ClientOptions => (t.secure ? { tls: { ca: cert.cert } } : {});

  async function ourServer(
    options: Parameters<typeof startServer>[1] = {},
    route: Parameters<typeof startServer>[2] = {},
  ): Promise<OurServer> {
    const srv = await startServer(t, options, route, cert);
    res.add(() => srv.close());
    return srv;
  }

  async function wsServer(options: WsServerOptions = {}): Promise<WsPeerServer> {
    const srv = await startWsServer(t, options, cert);
    res.add(() => srv.close());
    return srv;
  }

  const ourClient = (url: string, options: ClientOptions = {}): Promise<WebSocket> =>
    openOurClient(url, { ...ourTls(), ...options }, res);

  /** Our server, a ws client on its '/probe' route, and our side of that connection. */
  async function wsClientOnProbe(): Promise<{ c: WsPeer; sws: WebSocket }> {
    const srv = await ourServer();
    const c = await openWsClient(srv.url('/probe'), wsTls(), res);
    const { ws: sws } = await srv.connections.shift();
    return { c, sws };
  }

  /** A ws server, our client on its '/probe' path, and the ws side of that connection. */
  async function ourClientOnProbe(): Promise<{ ws: WebSocket; s: WsServerConnection }> {
    const srv = await wsServer();
    const ws = await ourClient(srv.url('/probe'));
    const s = await srv.connections.shift();
    return { ws, s };
  }

  // ---- our server, ws client -----------------------------------------------------------

  describe.skipIf(skip)('our server <- ws client', () => {
    it('echoes text, binary and empty messages, keeping their type', async () => {
      const srv = await ourServer();
      const c = await openWsClient(srv.url(), wsTls(), res);
      const { ws: sws } = await srv.connections.shift();
      expect(sws.remoteAddress).toBe(t.host);
      const cases: Array<[string | Buffer, boolean]> = [
        ['héllo ✓ wörld 😀', false],
        [Buffer.from([0, 1, 2, 0x7f, 0x80, 0xfe, 0xff]), true],
        ['', false],
        [Buffer.alloc(0), true],
      ];
      for (const [data, binary] of cases) {
        c.ws.send(data, { binary });
        const m = await c.messages.shift();
        expect(m.binary).toBe(binary);
        expect(m.data.equals(Buffer.from(data))).toBe(true);
      }
      expect(srv.received.map((r) => [r.type, r.size])).toEqual([
        ['text', Buffer.byteLength('héllo ✓ wörld 😀')],
        ['binary', 7],
        ['text', 0],
        ['binary', 0],
      ]);
    });

    it.each(SIZES)('echoes a %d-byte binary and text message byte-exact', async (size) => {
      const srv = await ourServer(BIG);
      const c = await openWsClient(srv.url(), { ...wsTls(), maxPayload: 32 * MiB }, res);
      const binary = randomBytes(size);
      const text = mixedText(size);
      c.ws.send(binary);
      const b = await c.messages.shift(20_000);
      expect(b.binary).toBe(true);
      expect(b.data.length).toBe(size);
      expect(sha256(b.data)).toBe(sha256(binary));
      c.ws.send(text);
      const s = await c.messages.shift(20_000);
      expect(s.binary).toBe(false);
      expect(s.data.length).toBe(size);
      expect(sha256(s.data)).toBe(sha256(text));
      // What the server itself received, not only what came back.
      expect(srv.received).toEqual([
        { type: 'binary', size, sha256: sha256(binary) },
        { type: 'text', size, sha256: sha256(text) },
      ]);
    });

    it('reassembles messages the ws client sends fragmented', async () => {
      const { c, sws } = await wsClientOnProbe();
      const frames = await takeFrames(sws, 5, () => wsSendsFragmented(c.ws));
      // The wire really carried fragments: TEXT, CONT, CONT(fin), BINARY, CONT(fin).
      expect(frames).toEqual(WS_FRAGMENTS);
      const m1 = await sws.receive();
      expect(m1?.type).toBe('text');
      expect(m1?.text()).toBe('fragmented ✓');
      const m2 = await sws.receive();
      expect(m2?.type).toBe('binary');
      expect([...(m2?.data ?? [])]).toEqual([1, 2, 3]);
    });

    it('sends fragmented messages (with a ping in between) that the ws client reassembles', async () => {
      const { c, sws } = await wsClientOnProbe();
      await sendFragmentedAroundAPing(sws, c);
    });

    it('answers the ws client ping and reports it as a ping event', async () => {
      const { c, sws } = await wsClientOnProbe();
      const pings = pingEvents(sws);
      c.ws.ping(Buffer.from('are you there?'));
      expect((await c.pongs.shift()).toString()).toBe('are you there?');
      expect((await pings.shift()).toString()).toBe('are you there?');
      c.ws.ping();
      expect((await c.pongs.shift()).length).toBe(0);
    });

    it('pings the ws client: ping() resolves with the round-trip time', async () => {
      const { c, sws } = await wsClientOnProbe();
      expect(sws.rtt).toBeUndefined();
      const rtt = await within(sws.ping(), 5000, 'ping()');
      expect(typeof rtt).toBe('number');
      expect(Number.isFinite(rtt) && rtt >= 0).toBe(true);
      expect(sws.rtt).toBe(rtt);
      expect((await c.pings.shift()).length).toBe(4); // our default payload: a 4-byte counter
      await within(sws.ping('custom'), 5000, 'ping("custom")');
      expect((await c.pings.shift()).toString()).toBe('custom');
    });

    it.each([
      [1000, ''],
      [1001, ''],
      [1001, 'going away'],
      [4000, 'custom reason ✓'],
      [4999, 'x'.repeat(123)],
    ])('closes with %d %j: the ws client sees it, close() resolves cleanly', async (code, reason) => {
      const { c, sws } = await wsClientOnProbe();
      const info = await within(sws.close(code, reason), 5000, 'close()');
      // ws echoes the code and reason of the Close it received.
      expect(info).toEqual({ code, reason, wasClean: true });
      expect(await c.closed).toEqual({ code, reason });
      expect(sws.readyState).toBe(3);
      expect(await sws.closed).toEqual(info);
    });

    it.each([
      [1000, 'done'],
      [1001, 'bye'],
      [4001, 'app reason ✓'],
    ])('the ws client closes with %d %j: closed resolves with it, wasClean', async (code, reason) => {
      const { c, sws } = await wsClientOnProbe();
      c.ws.close(code, reason);
      const info = await within(sws.closed, 5000, 'closed');
      expect(info).toEqual({ code, reason, wasClean: true });
      expect(await sws.receive()).toBeNull();
      expect((await c.closed).code).toBe(code); // we echo the code (RFC 6455 §5.5.1)
    });

    it('the ws client closes without a code: 1005 on our side', async () => {
      const { c, sws } = await wsClientOnProbe();
      c.ws.close();
      expect(await within(sws.closed, 5000, 'closed')).toEqual({ code: 1005, reason: '', wasClean: true });
      expect((await c.closed).code).toBe(1005);
    });

    it('ws client terminate(): 1006 on our side', async () => {
      const { c, sws } = await wsClientOnProbe();
      c.ws.terminate();
      expect(await within(sws.closed, 5000, 'closed')).toEqual({ code: 1006, reason: '', wasClean: false });
      expect(await sws.receive()).toBeNull();
    });

    it('our terminate(): 1006 at the ws client', async () => {
      const { c, sws } = await wsClientOnProbe();
      sws.terminate();
      expect((await within(c.closed, 5000, 'the ws close event')).code).toBe(1006);
      expect((await sws.closed).code).toBe(1006);
    });

    describe('subprotocols (server protocols: chat.v2, chat.*)', () => {
      const route = { protocols: ['chat.v2', 'chat.*'] };

      it.each([
        [['chat.v1', 'chat.v2'], 'chat.v2'],
        [['chat.v2', 'chat.v1'], 'chat.v2'],
        [['chat.v1', 'chat.x'], 'chat.v1'],
        [['other', 'chat.x'], 'chat.x'],
      ])('offer %j selects %s', async (offer, expected) => {
        await withServer(t, { cert, route }, async (srv) => {
          const c = await openWsClient(srv.url('/probe'), { ...wsTls(), protocols: offer }, res);
          const { ws: sws, req } = await srv.connections.shift();
          expect(c.ws.protocol).toBe(expected);
          expect(sws.protocol).toBe(expected);
          expect(req.protocols).toEqual(offer);
        });
      });

      it('an offer that matches nothing gets no Sec-WebSocket-Protocol (ws then gives up)', async () => {
        await withServer(t, { cert, route }, async (srv) => {
          const attempt = startWsClient(srv.url('/probe'), ['superchat'], wsTls(), res);
          const headers = await within(attempt.upgradeHeaders, 5000, 'the 101');
          expect(headers['sec-websocket-protocol']).toBeUndefined();
          await expect(attempt.open).rejects.toThrow(/no subprotocol/i);
        });
      });

      it('no offer: no subprotocol on either side', async () => {
        await withServer(t, { cert, route }, async (srv) => {
          const c = await openWsClient(srv.url('/probe'), wsTls(), res);
          const { ws: sws } = await srv.connections.shift();
          expect(c.ws.protocol).toBe('');
          expect(sws.protocol).toBe('');
        });
      });
    });

    if (t.secure)
      it('the ws client refuses our certificate when it does not trust it', async () => {
        const srv = await ourServer();
        const attempt = startWsClient(srv.url(), undefined, {}, res);
        await expect(attempt.open).rejects.toThrow(/self[- ]signed/i);
      });
  });

  // ---- our client, ws server -----------------------------------------------------------

  describe.skipIf(skip)('our client -> ws server', () => {
    it('echoes text, binary and empty messages, keeping their type', async () => {
      const srv = await wsServer();
      const ws = await ourClient(srv.url());
      const s = await srv.connections.shift();
      expect(s.req.socket.remoteAddress).toBe(t.host);
      expect(ws.remoteAddress).toBe(t.host);
      const cases: Array<[string | Buffer, 'text' | 'binary']> = [
        ['héllo ✓ wörld 😀', 'text'],
        [Buffer.from([0, 1, 2, 0x7f, 0x80, 0xfe, 0xff]), 'binary'],
        ['', 'text'],
        [Buffer.alloc(0), 'binary'],
      ];
      for (const [data, type] of cases) {
        await ws.send(data);
        const m = await within(ws.receive(), 5000, 'the echo');
        expect(m?.type).toBe(type);
        expect(m?.data.equals(Buffer.from(data))).toBe(true);
      }
    });

    it.each(SIZES)('echoes a %d-byte binary and text message byte-exact', async (size) => {
      const srv = await wsServer({ maxPayload: 32 * MiB });
      const ws = await ourClient(srv.url(), BIG);
      const s = await srv.connections.shift();
      const seen: Array<[boolean, number, string]> = [];
      s.ws.on('message', (data: Buffer, isBinary: boolean) =>
        seen.push([isBinary, data.length, sha256(data)]),
      );
      const binary = randomBytes(size);
      const text = mixedText(size);
      await ws.send(binary);
      const b = await within(ws.receive(), 20_000, 'the binary echo');
      expect(b?.type).toBe('binary');
      expect(b?.size).toBe(size);
      expect(sha256(b!.data)).toBe(sha256(binary));
      await ws.send(text);
      const m = await within(ws.receive(), 20_000, 'the text echo');
      expect(m?.type).toBe('text');
      expect(m?.size).toBe(size);
      expect(sha256(m!.data)).toBe(sha256(text));
      // What the ws server itself received.
      expect(seen).toEqual([
        [true, size, sha256(binary)],
        [false, size, sha256(text)],
      ]);
    });

    it('reassembles messages the ws server sends fragmented', async () => {
      const { ws, s } = await ourClientOnProbe();
      const frames = await takeFrames(ws, 5, () => wsSendsFragmented(s.ws));
      expect(frames).toEqual(WS_FRAGMENTS);
      const m1 = await ws.receive();
      expect([m1?.type, m1?.text()]).toEqual(['text', 'fragmented ✓']);
      const m2 = await ws.receive();
      expect([m2?.type, [...(m2?.data ?? [])]]).toEqual(['binary', [1, 2, 3]]);
    });

    it('sends fragmented messages (with a ping in between) that the ws server reassembles', async () => {
      const { ws, s } = await ourClientOnProbe();
      await sendFragmentedAroundAPing(ws, s);
    });

    it('answers the ws server ping and reports it as a ping event', async () => {
      const { ws, s } = await ourClientOnProbe();
      const pings = pingEvents(ws);
      s.ws.ping(Buffer.from('server ping'));
      expect((await s.pongs.shift()).toString()).toBe('server ping');
      expect((await pings.shift()).toString()).toBe('server ping');
    });

    it('pings the ws server: ping() resolves with the round-trip time', async () => {
      const { ws, s } = await ourClientOnProbe();
      const rtt = await within(ws.ping('hello'), 5000, 'ping()');
      expect(Number.isFinite(rtt) && rtt >= 0).toBe(true);
      expect(ws.rtt).toBe(rtt);
      expect((await s.pings.shift()).toString()).toBe('hello');
    });

    it.each([
      [1000, ''],
      [1001, ''],
      [1001, 'going away'],
      [4000, 'custom reason ✓'],
    ])('closes with %d %j: the ws server sees it, close() resolves cleanly', async (code, reason) => {
      const { ws, s } = await ourClientOnProbe();
      const info = await within(ws.close(code, reason), 5000, 'close()');
      expect(info).toEqual({ code, reason, wasClean: true });
      expect(await s.closed).toEqual({ code, reason });
      expect(ws.readyState).toBe(3);
    });

    it.each([
      [1000, 'done'],
      [1001, 'server going away'],
      [4002, 'app reason ✓'],
    ])('the ws server closes with %d %j: closed resolves with it, wasClean', async (code, reason) => {
      const { ws, s } = await ourClientOnProbe();
      s.ws.close(code, reason);
      expect(await within(ws.closed, 5000, 'closed')).toEqual({ code, reason, wasClean: true });
      expect(await ws.receive()).toBeNull();
      expect((await s.closed).code).toBe(code);
    });

    it('the ws server closes without a code: 1005 on our side', async () => {
      const { ws, s } = await ourClientOnProbe();
      s.ws.close();
      expect(await within(ws.closed, 5000, 'closed')).toEqual({ code: 1005, reason: '', wasClean: true });
    });

    it('ws server terminate(): 1006 on our side', async () => {
      const { ws, s } = await ourClientOnProbe();
      s.ws.terminate();
      expect(await within(ws.closed, 5000, 'closed')).toEqual({ code: 1006, reason: '', wasClean: false });
    });

    it('our terminate(): 1006 at the ws server', async () => {
      const { ws, s } = await ourClientOnProbe();
      ws.terminate();
      expect((await within(s.closed, 5000, 'the ws close event')).code).toBe(1006);
      expect((await ws.closed).code).toBe(1006);
    });

    describe('subprotocols', () => {
      const pickV2 = (protocols: Set<string>) => (protocols.has('chat.v2') ? 'chat.v2' : false);

      it('handleProtocols picks one of our offers', async () => {
        const srv = await wsServer({ handleProtocols: pickV2 });
        const ws = await ourClient(srv.url('/probe'), { protocols: ['chat.v1', 'chat.v2'] });
        const s = await srv.connections.shift();
        expect(ws.protocol).toBe('chat.v2');
        expect(s.ws.protocol).toBe('chat.v2');
        expect(s.req.headers['sec-websocket-protocol']).toBe('chat.v1, chat.v2');
      });

      it('handleProtocols declines: connected without a subprotocol', async () => {
        const srv = await wsServer({ handleProtocols: pickV2 });
        const ws = await ourClient(srv.url('/probe'), { protocols: ['chat.v1'] });
        const s = await srv.connections.shift();
        expect(ws.protocol).toBe('');
        expect(s.ws.protocol).toBe('');
      });

      it("ws's default choice is our first offer", async () => {
        const srv = await wsServer();
        const ws = await ourClient(srv.url('/probe'), { protocols: ['b.proto', 'a.proto'] });
        expect(ws.protocol).toBe('b.proto');
      });

      it('a subprotocol we did not offer fails the handshake', async () => {
        const srv = await wsServer({ handleProtocols: () => 'chat.v9' });
        const err = await connect(srv.url('/probe'), {
          pingInterval: 0,
          ...ourTls(),
          protocols: ['chat.v1'],
        }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(HandshakeError);
        expect((err as Error).message).toMatch(/chat\.v9/);
      });
    });

    if (t.secure)
      it('rejects an untrusted certificate by default (ws server and ours)', async () => {
        const srv = await wsServer();
        await expect(connect(srv.url(), { pingInterval: 0 })).rejects.toThrow(/self[- ]signed/i);
        const ours = await ourServer();
        await expect(connect(ours.url(), { pingInterval: 0 })).rejects.toThrow(/self[- ]signed/i);
        // The same certificate, trusted through `ca`, connects.
        const ws = await ourClient(ours.url());
        expect(ws.readyState).toBe(1);
      });
  });
});
