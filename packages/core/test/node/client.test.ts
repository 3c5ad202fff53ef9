import { createServer, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer } from 'node:net';
import type { Duplex } from 'node:stream';
import {
  connect,
  HandshakeError,
  type UpgradeRequest,
  WebSocket,
  WebSocketError,
  WebSocketServer,
} from '@wskit/core';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  cleanup,
  echo,
  generateCert,
  HOST,
  onCleanup,
  plainServer,
  removeCert,
  track,
  waitFor,
  withTimeout,
} from '../../../../test/support/clients.js';
import { acceptFor, closedPort, serve } from './util.js';

afterEach(cleanup);

async function echoServer(options: ConstructorParameters<typeof WebSocketServer>[0] = {}) {
  const requests: UpgradeRequest[] = [];
  const wss = new WebSocketServer(options).route('/*', (ws, req) => {
    requests.push(req);
    return echo(ws, req);
  });
  const port = await serve(wss);
  return { wss, port, requests, url: `ws://${HOST}:${port}` };
}

async function roundTrip(ws: WebSocket, text: string): Promise<string> {
  await ws.send(text);
  const msg = await withTimeout(ws.receive(), 5000, 'echo');
  expect(msg).not.toBeNull();
  return msg!.text();
}

/**
 * A fake server: answers every upgrade with the head built by `respond` (from the
 * request's key), written raw. Records the sockets so tests can watch them.
 */
async function fakeServer(respond: (key: string, req: IncomingMessage) => string) {
  const sockets: Duplex[] = [];
  const received: Buffer[][] = [];
  const ended: boolean[] = [];
  const server = createServer();
  server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
    sockets.push(socket);
    const bytes: Buffer[] = [];
    received.push(bytes);
    const index = ended.push(false) - 1;
    socket.on('data', (chunk: Buffer) => bytes.push(chunk));
    // The client hanging up: its FIN (the server side stays half-open) or a reset.
    socket.on('end', () => {
      ended[index] = true;
    });
    socket.on('close', () => {
      ended[index] = true;
    });
    socket.on('error', () => {});
    const key = String(req.headers['sec-websocket-key'] ?? '');
    socket.write(respond(key, req));
  });
  const { port } = await plainServer(server);
  onCleanup(() => {
    for (const s of sockets) s.destroy();
  });
  return {
    port,
    sockets,
    received,
    url: `ws://${HOST}:${port}/`,
    /** Resolves when the client has hung up on connection `i`. */
    hungUp: (i: number) => waitFor(() => ended[i] === true, 5000, `client hang-up on socket ${i}`),
  };
}

const head101 = (lines: string[]) =>
  `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n${lines.map((l) => `${l}\r\n`).join('')}\r\n`;

describe('connect()', () => {
  it('opens a ws:// connection to our server', async () => {
    const { url, wss } = await echoServer();
    const ws = track(await connect(`${url}/chat?x=1`));
    expect(ws).toBeInstanceOf(WebSocket);
    expect(ws.readyState).toBe(WebSocket.OPEN);
    expect(ws.isServer).toBe(false);
    expect(ws.path).toBe('/chat');
    expect(await roundTrip(ws, 'hello')).toBe('hello');
    expect(wss.clients.size).toBe(1);
  });

  it('accepts a URL object', async () => {
    const { url } = await echoServer();
    const ws = track(await connect(new URL(`${url}/u`)));
    expect(await roundTrip(ws, 'url object')).toBe('url object');
  });

  it('sends custom headers and the origin option, but never lets headers replace handshake fields', async () => {
    const { url, requests } = await echoServer({ origins: ['https://app.example'] });
    const ws = track(
      await connect(`${url}/h`, {
        origin: 'https://app.example',
        headers: {
          'X-Token': 'secret',
          Cookie: 'a=1; b=2',
          'Sec-WebSocket-Key': 'forged',
          Upgrade: 'something-else',
          'Sec-WebSocket-Version': '8',
        },
      }),
    );
    expect(await roundTrip(ws, 'x')).toBe('x');
    const req = requests[0]!;
    expect(req.headers['x-token']).toBe('secret');
    expect(req.headers.cookie).toBe('a=1; b=2');
    expect(req.origin).toBe('https://app.example');
    expect(req.headers.upgrade).toBe('websocket');
    expect(req.headers['sec-websocket-version']).toBe('13');
    expect(req.headers['sec-websocket-key']).not.toBe('forged');
    expect(req.headers.host).toBe(`${HOST}:${new URL(url).port}`);
  });

  it('offers subprotocols in order and reports the chosen one as ws.protocol', async () => {
    const { url, requests } = await echoServer({ protocols: ['graphql-ws', 'chat'] });
    const ws = track(await connect(url, { protocols: ['chat', 'graphql-ws'] }));
    expect(requests[0]!.protocols).toEqual(['chat', 'graphql-ws']);
    expect(ws.protocol).toBe('graphql-ws');
    const none = track(await connect(url));
    expect(none.protocol).toBe('');
    expect(requests[1]!.protocols).toEqual([]);
  });

  it('rejects invalid subprotocol offers before connecting', async () => {
    const { url, requests } = await echoServer();
    await expect(connect(url, { protocols: ['a b'] })).rejects.toBeInstanceOf(SyntaxError);
    await expect(connect(url, { protocols: ['a', 'a'] })).rejects.toBeInstanceOf(SyntaxError);
    await expect(connect('ftp://127.0.0.1/')).rejects.toBeInstanceOf(SyntaxError);
    expect(requests).toEqual([]);
  });
});

describe('handshake failures', () => {
  it('a non-101 answer rejects with HandshakeError carrying status, headers and body', async () => {
    const wss = new WebSocketServer().route('/*', echo, {
      acceptConnection: () => false,
      accessDenied: (_req, reply) => reply(401, 'nope', { 'WWW-Authenticate': 'Bearer realm="ws"' }),
    });
    const port = await serve(wss);
    const err = await connect(`ws://${HOST}:${port}/private`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HandshakeError);
    const { response, message } = err as HandshakeError;
    expect(message).toBe('Unexpected server response: 401 Unauthorized');
    expect(response?.status).toBe(401);
    expect(response?.statusText).toBe('Unauthorized');
    expect(response?.headers['www-authenticate']).toBe('Bearer realm="ws"');
    expect(response?.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(response?.body).toBe('nope');
    expect((err as HandshakeError).status).toBe(401);
  });

  it('a 200 from a plain HTTP server rejects with its body', async () => {
    const server = createServer((_req, res) => res.end('just a web page'));
    server.on('upgrade', (_req, socket: Duplex) => {
      socket.end('HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 15\r\n\r\njust a web page');
    });
    const { port } = await plainServer(server);
    await expect(connect(`ws://${HOST}:${port}/`)).rejects.toMatchObject({
      name: 'HandshakeError',
      response: { status: 200, body: 'just a web page', headers: { 'content-type': 'text/html' } },
    });
  });

  it('a 101 with a wrong Sec-WebSocket-Accept rejects with HandshakeError and drops the socket', async () => {
    const fake = await fakeServer(() => head101([`Sec-WebSocket-Accept: ${acceptFor('not the key')}`]));
    const err = await connect(fake.url).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HandshakeError);
    expect((err as HandshakeError).message).toMatch(/wrong Sec-WebSocket-Accept/);
    expect((err as HandshakeError).response?.status).toBe(101);
    await fake.hungUp(0);
  });

  it('a 101 without Sec-WebSocket-Accept rejects with HandshakeError', async () => {
    const fake = await fakeServer(() => head101([]));
    await expect(connect(fake.url)).rejects.toThrow(/no Sec-WebSocket-Accept/);
  });

  it('a 101 without "Upgrade: websocket" rejects with HandshakeError', async () => {
    const fake = await fakeServer(
      (key) =>
        `HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptFor(key)}\r\n\r\n`,
    );
    const err = await connect(fake.url).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HandshakeError);
    expect((err as Error).message).toMatch(/Upgrade: websocket/);
  });

  it('a 101 selecting a subprotocol that was not offered rejects with HandshakeError', async () => {
    const fake = await fakeServer((key) =>
      head101([`Sec-WebSocket-Accept: ${acceptFor(key)}`, 'Sec-WebSocket-Protocol: other']),
    );
    const notOffered = await connect(fake.url, { protocols: ['chat'] }).catch((e: unknown) => e);
    expect(notOffered).toBeInstanceOf(HandshakeError);
    expect((notOffered as Error).message).toMatch(/"other", which was not requested/);
    const noneOffered = await connect(fake.url).catch((e: unknown) => e);
    expect(noneOffered).toBeInstanceOf(HandshakeError);
    expect((noneOffered as Error).message).toMatch(/none was requested/);
    await fake.hungUp(0);
    await fake.hungUp(1);
  });

  it('a 101 that is correct in every respect connects (the fake server itself is sound)', async () => {
    const fake = await fakeServer((key) =>
      head101([`Sec-WebSocket-Accept: ${acceptFor(key)}`, 'Sec-WebSocket-Protocol: chat']),
    );
    const ws = track(await connect(fake.url, { protocols: ['x', 'chat'] }));
    expect(ws.protocol).toBe('chat');
  });

  it('a 101 accepting an extension that was not offered fails with 1010 (RFC 6455 §4.1)', async () => {
    const fake = await fakeServer((key) =>
      head101([`Sec-WebSocket-Accept: ${acceptFor(key)}`, 'Sec-WebSocket-Extensions: permessage-deflate']),
    );
    const err = await connect(fake.url).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WebSocketError);
    expect((err as WebSocketError).code).toBe(1010);
    await fake.hungUp(0);
    expect(Buffer.concat(fake.received[0]!).length).toBe(0);
  });
});

describe('an invalid 101: the connection was never established, so no frame is sent (RFC 6455 §4.1)', () => {
  /**
   * A raw TCP server: reads the request head, answers with `respond(key)` (plus `after`
   * in the same write, as a server sending frames right away would), and records every
   * byte the client sends after its request until the client hangs up.
   */
  async function rawFake(respond: (key: string) => string, after: Buffer = Buffer.alloc(0)) {
    let received = Buffer.alloc(0);
    let hungUp!: () => void;
    const closed = new Promise<void>((resolve) => {
      hungUp = resolve;
    });
    const server = createNetServer((socket) => {
      let head = '';
      let inHead = true;
      socket.on('error', () => {});
      socket.on('data', (chunk: Buffer) => {
        if (!inHead) {
          received = Buffer.concat([received, chunk]);
          return;
        }
        head += chunk.toString('latin1');
        const end = head.indexOf('\r\n\r\n');
        if (end === -1) return;
        inHead = false;
        received = Buffer.from(head.slice(end + 4), 'latin1');
        const key = /\r\nsec-websocket-key:\s*(\S+)/i.exec(head)?.[1] ?? '';
        socket.write(Buffer.concat([Buffer.from(respond(key), 'latin1'), after]));
      });
      socket.on('end', () => hungUp());
      socket.on('close', () => hungUp());
    });
    await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
    onCleanup(
      () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
        }),
    );
    const { port } = server.address() as { port: number };
    return {
      url: `ws://${HOST}:${port}/`,
      /** Every byte after the request, once the client has hung up. */
      bytesAfterRequest: async () => {
        await withTimeout(closed, 5000, 'the client hanging up');
        return received;
      },
    };
  }

  // A text frame the server sends right behind its 101 (the client must not answer it either).
  const textFrame = Buffer.from([0x81, 0x02, 0x68, 0x69]);

  it('an extension that was not offered: rejects with WebSocketError 1010, sends nothing', async () => {
    const fake = await rawFake(
      (key) => head101([`Sec-WebSocket-Accept: ${acceptFor(key)}`, 'Sec-WebSocket-Extensions: x-unknown']),
      textFrame,
    );
    const err = await connect(fake.url).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WebSocketError);
    expect((err as WebSocketError).code).toBe(1010);
    expect((err as Error).message).toMatch(/x-unknown|not offered|extension/i);
    expect((await fake.bytesAfterRequest()).length).toBe(0);
  });

  it('permessage-deflate answered with parameters we did not offer: 1010, nothing sent', async () => {
    const fake = await rawFake((key) =>
      head101([
        `Sec-WebSocket-Accept: ${acceptFor(key)}`,
        'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=9',
      ]),
    );
    // RFC 7692 §7.1.2.2: without client_max_window_bits in the offer, the answer may not name it.
    const err = await connect(fake.url, {
      perMessageDeflate: { clientMaxWindowBits: false },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WebSocketError);
    expect((err as WebSocketError).code).toBe(1010);
    expect((await fake.bytesAfterRequest()).length).toBe(0);
  });

  it('a subprotocol that was not offered: rejects with HandshakeError, sends nothing', async () => {
    const fake = await rawFake(
      (key) => head101([`Sec-WebSocket-Accept: ${acceptFor(key)}`, 'Sec-WebSocket-Protocol: evil']),
      textFrame,
    );
    const err = await connect(fake.url, { protocols: ['chat'] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HandshakeError);
    expect((err as Error).message).toMatch(/"evil", which was not requested/);
    expect((err as HandshakeError).response?.status).toBe(101);
    expect((await fake.bytesAfterRequest()).length).toBe(0);
  });

  it('a wrong Sec-WebSocket-Accept: rejects with HandshakeError, sends nothing', async () => {
    const fake = await rawFake(
      () => head101([`Sec-WebSocket-Accept: ${acceptFor('another key')}`]),
      textFrame,
    );
    const err = await connect(fake.url).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HandshakeError);
    expect((await fake.bytesAfterRequest()).length).toBe(0);
  });
});

describe('redirects', () => {
  /** A server that answers every upgrade with a redirect to `location`. */
  async function redirector(location: (port: number) => string, status = 302) {
    const server = createServer();
    let hits = 0;
    server.on('upgrade', (_req, socket: Duplex) => {
      hits++;
      socket.end(
        `HTTP/1.1 ${status} Found\r\nLocation: ${location(port)}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
      );
    });
    const { port } = await plainServer(server);
    return { port, url: `ws://${HOST}:${port}/old`, hits: () => hits };
  }

  it('followRedirects: 2 follows a 302 Location to the real endpoint', async () => {
    const { url: target, requests } = await echoServer();
    const hop = await redirector(() => `${target}/real?from=redirect`);
    const ws = track(await connect(hop.url, { followRedirects: 2 }));
    expect(await roundTrip(ws, 'after redirect')).toBe('after redirect');
    expect(hop.hits()).toBe(1);
    expect(requests[0]!.url).toBe('/real?from=redirect');
    expect(ws.path).toBe('/real');
  });

  it('followRedirects: 0 (the default) rejects with the 302 and its Location', async () => {
    const { url: target, requests } = await echoServer();
    const hop = await redirector(() => `${target}/real`);
    for (const options of [{ followRedirects: 0 }, {}]) {
      const err = await connect(hop.url, options).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(HandshakeError);
      expect((err as HandshakeError).response?.status).toBe(302);
      expect((err as HandshakeError).response?.headers.location).toBe(`${target}/real`);
    }
    expect(requests).toEqual([]);
  });

  it('stops after the given number of hops', async () => {
    const { url: target } = await echoServer();
    const third = await redirector(() => `${target}/end`);
    const second = await redirector(() => third.url);
    const first = await redirector(() => second.url);
    const err = await connect(first.url, { followRedirects: 2 }).catch((e: unknown) => e);
    expect((err as HandshakeError).response?.status).toBe(302);
    expect([first.hits(), second.hits(), third.hits()]).toEqual([1, 1, 1]);
    const ws = track(await connect(first.url, { followRedirects: 3 }));
    expect(ws.path).toBe('/end');
  });

  it('follows a relative Location from a route that redirects with accessDenied', async () => {
    const wss = new WebSocketServer()
      .route('/old', echo, {
        acceptConnection: () => false,
        accessDenied: (_req, reply) => reply(307, '', { Location: '/new' }),
      })
      .route('/new', (ws) => void ws.send('new home'));
    const port = await serve(wss);
    const ws = track(await connect(`ws://${HOST}:${port}/old`, { followRedirects: 1 }));
    expect((await ws.receive())?.text()).toBe('new home');
  });
});

describe('redirects and credentials', () => {
  /** Answers every upgrade with a redirect to `location(path)`; records each request's headers. */
  async function recordingRedirector(location: (path: string) => string) {
    const seen: IncomingHttpHeaders[] = [];
    const server = createServer();
    server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
      seen.push(req.headers);
      socket.end(
        `HTTP/1.1 302 Found\r\nLocation: ${location(req.url ?? '/')}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
      );
    });
    const { port } = await plainServer(server);
    return { port, seen };
  }

  const credentials = {
    Authorization: 'Bearer secret-token',
    Cookie: 'session=secret',
    'Proxy-Authorization': 'Basic cHJveHk6c2VjcmV0',
    'X-Trace': 'kept',
  };

  it('a 302 to another port drops Authorization, Cookie and Proxy-Authorization; other headers go on', async () => {
    const target = await echoServer();
    const hop = await recordingRedirector(() => `${target.url}/landing`);
    const ws = track(
      await connect(`ws://${HOST}:${hop.port}/start`, { followRedirects: 1, headers: credentials }),
    );
    expect(await roundTrip(ws, 'hi')).toBe('hi');
    // The first server (the caller's own target) got them all.
    expect(hop.seen[0]).toMatchObject({
      authorization: 'Bearer secret-token',
      cookie: 'session=secret',
      'proxy-authorization': 'Basic cHJveHk6c2VjcmV0',
      'x-trace': 'kept',
    });
    const received = target.requests[0]!.headers;
    expect(received.authorization).toBeUndefined();
    expect(received.cookie).toBeUndefined();
    expect(received['proxy-authorization']).toBeUndefined();
    expect(received['x-trace']).toBe('kept');
    expect(received.host).toBe(`${HOST}:${target.port}`);
  });

  it('user info in the URL is sent as Basic credentials, and not to another origin', async () => {
    const target = await echoServer();
    const hop = await recordingRedirector(() => `${target.url}/landing`);
    const ws = track(await connect(`ws://us%40er:p%3Ass@${HOST}:${hop.port}/start`, { followRedirects: 1 }));
    expect(await roundTrip(ws, 'hi')).toBe('hi');
    expect(hop.seen[0]!.authorization).toBe(`Basic ${Buffer.from('us@er:p:ss').toString('base64')}`);
    expect(target.requests[0]!.headers.authorization).toBeUndefined();
  });

  it('a redirect within the same origin keeps the credentials', async () => {
    const requests: UpgradeRequest[] = [];
    const wss = new WebSocketServer()
      .route('/old', echo, {
        acceptConnection: () => false,
        accessDenied: (_req, reply) => reply(307, '', { Location: '/new' }),
      })
      .route('/new', (ws, req) => {
        requests.push(req);
        void ws.send('new home');
      });
    const port = await serve(wss);
    const ws = track(
      await connect(`ws://${HOST}:${port}/old`, { followRedirects: 1, headers: { Cookie: 'session=1' } }),
    );
    expect((await ws.receive())?.text()).toBe('new home');
    expect(requests[0]!.headers.cookie).toBe('session=1');
  });

  it('the absolute-form request line never carries user info', async () => {
    const lines: string[] = [];
    const server = createServer();
    server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
      lines.push(String(req.url));
      socket.destroy();
    });
    const { port } = await plainServer(server);
    await expect(connect(`ws://user:pw@${HOST}:${port}/p`, { stripHost: false })).rejects.toThrow();
    expect(lines).toEqual([`ws://${HOST}:${port}/p`]);
  });

  it('a redirect loop fails with a clear error instead of going round', async () => {
    let bPort = 0;
    const a = await recordingRedirector(() => `ws://${HOST}:${bPort}/b`);
    const b = await recordingRedirector(() => `ws://${HOST}:${a.port}/a`);
    bPort = b.port;
    const err = await connect(`ws://${HOST}:${a.port}/a`, { followRedirects: 10 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HandshakeError);
    expect((err as Error).message).toMatch(/Redirect loop/);
    expect((err as HandshakeError).response?.status).toBe(302);
    expect([a.seen.length, b.seen.length]).toEqual([1, 1]);
  });

  it('followRedirects is capped at 20 hops whatever its value', async () => {
    // Every answer sends the client one step further: /1 -> /2 -> ... (never a loop).
    const hop = await recordingRedirector((path) => `/${Number(path.slice(1)) + 1}`);
    const err = await connect(`ws://${HOST}:${hop.port}/0`, { followRedirects: 1_000_000 }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(HandshakeError);
    expect((err as Error).message).toMatch(/Too many redirects: followed 20/);
    expect(hop.seen.length).toBe(21);
  });

  describe('from wss:', () => {
    const cert = generateCert();
    afterAll(() => removeCert(cert));

    /** An https server answering every upgrade with a 302 to `location`. */
    async function secureRedirector(location: string) {
      const server = createHttpsServer({ cert: cert.cert, key: cert.key });
      server.on('upgrade', (_req: IncomingMessage, socket: Duplex) => {
        socket.end(
          `HTTP/1.1 302 Found\r\nLocation: ${location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
        );
      });
      await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
      onCleanup(
        () =>
          new Promise<void>((resolve) => {
            server.closeAllConnections();
            server.close(() => resolve());
          }),
      );
      return `wss://${HOST}:${(server.address() as { port: number }).port}/secure`;
    }

    it('a redirect to ws: is refused with a clear error; the plain server is never contacted', async () => {
      const target = await echoServer();
      const url = await secureRedirector(`${target.url}/plain`);
      const err = await connect(url, {
        followRedirects: 3,
        tls: { ca: cert.cert },
        headers: credentials,
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(HandshakeError);
      expect((err as Error).message).toMatch(
        /Refused a redirect from wss:.* to ws:.*leaves TLS.*allowInsecureRedirects/,
      );
      expect((err as HandshakeError).response?.status).toBe(302);
      expect(target.requests).toEqual([]);
    });

    it('allowInsecureRedirects: true follows it, without the credentials', async () => {
      const target = await echoServer();
      const url = await secureRedirector(`${target.url}/plain`);
      const ws = track(
        await connect(url, {
          followRedirects: 3,
          allowInsecureRedirects: true,
          tls: { ca: cert.cert },
          headers: credentials,
        }),
      );
      expect(await roundTrip(ws, 'downgraded')).toBe('downgraded');
      expect(target.requests[0]!.headers.authorization).toBeUndefined();
      expect(target.requests[0]!.headers.cookie).toBeUndefined();
    });
  });
});

describe('request line and addressing', () => {
  /** A raw TCP server that records the first request line, then hangs up. */
  async function lineRecorder() {
    const lines: string[] = [];
    const server = createNetServer((socket) => {
      let buffered = '';
      socket.on('error', () => {});
      socket.on('data', (chunk: Buffer) => {
        buffered += chunk.toString('latin1');
        const end = buffered.indexOf('\r\n');
        if (end === -1) return;
        lines.push(buffered.slice(0, end));
        socket.destroy();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
    onCleanup(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const port = (server.address() as { port: number }).port;
    return { port, lines };
  }

  it('stripHost (default) sends the origin-form request line; stripHost: false the absolute form', async () => {
    const rec = await lineRecorder();
    await expect(connect(`ws://${HOST}:${rec.port}/path?q=1`)).rejects.toThrow();
    await expect(connect(`ws://${HOST}:${rec.port}/path?q=1`, { stripHost: false })).rejects.toThrow();
    expect(rec.lines).toEqual(['GET /path?q=1 HTTP/1.1', `GET ws://${HOST}:${rec.port}/path?q=1 HTTP/1.1`]);
  });

  it('our server accepts an absolute-form request line (RFC 9112 §3.2.2)', async () => {
    const requests: UpgradeRequest[] = [];
    const wss = new WebSocketServer().route('/path', (ws, req) => {
      requests.push(req);
      void ws.send('routed');
    });
    const port = await serve(wss);
    const ws = track(await connect(`ws://${HOST}:${port}/path?q=1`, { stripHost: false }));
    expect((await ws.receive())?.text()).toBe('routed');
    expect(requests[0]!.path).toBe('/path');
    expect(requests[0]!.query.get('q')).toBe('1');
  });

  it('connection refused rejects with the system error', async () => {
    const port = await closedPort();
    const err = await connect(`ws://${HOST}:${port}/`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(HandshakeError);
    expect(err).toMatchObject({ code: 'ECONNREFUSED', syscall: 'connect' });
  });

  it('connects to an IPv4 literal', async () => {
    const { port } = await echoServer();
    const ws = track(await connect(`ws://127.0.0.1:${port}/`));
    expect(ws.remoteAddress).toBe('127.0.0.1');
    expect(ws.remotePort).toBe(port);
  });

  it('connects to the host name localhost, and with family: 4 uses IPv4', async () => {
    const { port, requests } = await echoServer();
    const v4 = track(await connect(`ws://localhost:${port}/`, { family: 4 }));
    expect(v4.remoteAddress).toBe('127.0.0.1');
    expect(requests[0]!.headers.host).toBe(`localhost:${port}`);
    expect(await roundTrip(v4, 'via localhost')).toBe('via localhost');
    // Without a family the resolver may try ::1 first; the server only listens on IPv4.
    const any = track(await connect(`ws://localhost:${port}/`));
    expect(any.remoteAddress).toBe('127.0.0.1');
  });

  it('family: 6 does not reach an IPv4-only server through localhost', async () => {
    const { port, requests } = await echoServer();
    await expect(connect(`ws://localhost:${port}/`, { family: 6 })).rejects.toThrow();
    expect(requests).toEqual([]);
  });

  it('a server that closes without answering rejects with an error, not a hang', async () => {
    const server = createNetServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
    onCleanup(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const port = (server.address() as { port: number }).port;
    await expect(withTimeout(connect(`ws://${HOST}:${port}/`), 5000, 'connect')).rejects.toMatchObject({
      code: expect.stringMatching(/ECONNRESET|EPIPE/),
    });
  });
});

describe('after the handshake', () => {
  it('the server sees the client as connected until it closes', async () => {
    const { url, wss } = await echoServer();
    const ws = await connect(url);
    expect(wss.clients.size).toBe(1);
    const [serverSide] = [...wss.clients];
    // The client learns the server's answer: the code echoed back (RFC 6455 §5.5.1).
    const info = await ws.close(1000, 'bye');
    expect(info).toEqual({ code: 1000, reason: '', wasClean: true });
    expect(await serverSide!.closed).toEqual({ code: 1000, reason: 'bye', wasClean: true });
    await waitFor(() => wss.clients.size === 0);
  });
});
