import { createServer } from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import { connect, type UpgradeRequest, WebSocket, WebSocketServer } from '@wskit/core';
import { afterEach, describe, expect, it } from 'vitest';
import {
  cleanup,
  echo,
  HOST,
  onCleanup,
  open,
  plainServer,
  stopServer,
  waitFor,
  withTimeout,
} from '../../../../test/support/clients.js';
import { advanceUntil, useFakeClock } from '../../../../test/support/clock.js';
import { acceptFor, rawExchange, rawHandshake, serve, socketClosed, upgradeRequest } from './util.js';

afterEach(cleanup);

async function firstText(ws: WebSocket): Promise<string> {
  const msg = await withTimeout(ws.receive(), 5000, 'first message');
  expect(msg).not.toBeNull();
  return msg!.text();
}

describe('routing', () => {
  it('matches glob paths in order: the first matching route wins', async () => {
    const wss = new WebSocketServer()
      .route('/exact', (ws) => void ws.send('exact'))
      .route('/chat/*', (ws, req) => void ws.send(`chat ${req.path}`))
      .route('/chat/special', (ws) => void ws.send('special (never reached)'))
      .route('/*', (ws) => void ws.send('fallback'));
    const port = await serve(wss);
    const base = `ws://${HOST}:${port}`;

    expect(await firstText(await open(`${base}/exact`))).toBe('exact');
    expect(await firstText(await open(`${base}/chat/room1`))).toBe('chat /chat/room1');
    expect(await firstText(await open(`${base}/chat/special`))).toBe('chat /chat/special');
    expect(await firstText(await open(`${base}/chat/a/b?x=1`))).toBe('chat /chat/a/b');
    // "/chat/*" needs the slash: "/chat" itself falls through to the catch-all.
    expect(await firstText(await open(`${base}/chat`))).toBe('fallback');
  });

  it('answers an unmatched path with 404 and a body naming the path, then closes', async () => {
    const wss = new WebSocketServer().route('/chat/*', echo);
    const port = await serve(wss);
    const res = await rawExchange(port, upgradeRequest(`${HOST}:${port}`, { path: '/nope?x=1' }).text);
    expect(res.statusLine).toBe('HTTP/1.1 404 Not Found');
    expect(res.headers.connection).toBe('close');
    expect(res.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(res.body).toBe('No WebSocket route for /nope\n');
    expect(res.headers['content-length']).toBe(String(Buffer.byteLength(res.body)));
    expect(wss.clients.size).toBe(0);
  });

  it('rejects the client with HandshakeError 404 for an unmatched path', async () => {
    const wss = new WebSocketServer().route('/a', echo);
    const port = await serve(wss);
    const err = await connect(`ws://${HOST}:${port}/b`).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'HandshakeError', response: { status: 404 } });
  });
});

describe('validating the upgrade request', () => {
  async function setup() {
    const wss = new WebSocketServer().route('/*', echo);
    const port = await serve(wss);
    return { wss, port, host: `${HOST}:${port}` };
  }

  it('answers a wrong Sec-WebSocket-Version with 426 and Sec-WebSocket-Version: 13', async () => {
    const { port, host } = await setup();
    const res = await rawExchange(
      port,
      upgradeRequest(host, { headers: { 'Sec-WebSocket-Version': '8' } }).text,
    );
    expect(res.statusLine).toBe('HTTP/1.1 426 Upgrade Required');
    expect(res.headers['sec-websocket-version']).toBe('13');
    expect(res.body).toBe('The Sec-WebSocket-Version header is "8"; only version 13 is supported.\n');

    const missing = await rawExchange(
      port,
      upgradeRequest(host, { headers: { 'Sec-WebSocket-Version': null } }).text,
    );
    expect(missing.status).toBe(426);
    expect(missing.headers['sec-websocket-version']).toBe('13');
    expect(missing.body).toContain('missing');
  });

  it('answers POST with 405 and Allow: GET', async () => {
    const { port, host } = await setup();
    const res = await rawExchange(
      port,
      upgradeRequest(host, { method: 'POST', headers: { 'Content-Length': '0' } }).text,
    );
    expect(res.statusLine).toBe('HTTP/1.1 405 Method Not Allowed');
    expect(res.headers.allow).toBe('GET');
    expect(res.body).toBe('The method POST is not allowed for a WebSocket upgrade; use GET.\n');
  });

  it.each([
    ['a missing key', { headers: { 'Sec-WebSocket-Key': null } }, 'The Sec-WebSocket-Key header is missing.'],
    [
      'a key that is not base64',
      { headers: { 'Sec-WebSocket-Key': 'not a key!' } },
      'The Sec-WebSocket-Key header must be the base64 encoding of 16 bytes.',
    ],
    [
      'a key of 15 bytes',
      { headers: { 'Sec-WebSocket-Key': Buffer.alloc(15, 1).toString('base64') } },
      'The Sec-WebSocket-Key header must be the base64 encoding of 16 bytes.',
    ],
    [
      'an Upgrade header without "websocket"',
      { headers: { Upgrade: 'h2c' } },
      'The Upgrade header must contain "websocket".',
    ],
    [
      'HTTP/1.0',
      { version: '1.0' },
      'A WebSocket upgrade requires HTTP/1.1 or later, but the request is HTTP/1.0.',
    ],
    [
      'an invalid Sec-WebSocket-Protocol',
      { headers: { 'Sec-WebSocket-Protocol': 'a, a' } },
      'Invalid Sec-WebSocket-Protocol header.',
    ],
  ] as const)('answers %s with 400 and the reason, then closes the socket', async (_name, spec, reason) => {
    const { wss, port, host } = await setup();
    const res = await rawExchange(port, upgradeRequest(host, spec).text);
    expect(res.statusLine).toBe('HTTP/1.1 400 Bad Request');
    expect(res.headers.connection).toBe('close');
    expect(res.body.startsWith(reason)).toBe(true);
    expect(res.body.endsWith('\n')).toBe(true);
    expect(wss.clients.size).toBe(0);
  });

  it('answers requests without the Upgrade or Connection token with 400 and the reason (listen)', async () => {
    // Node hands such requests to 'request', not 'upgrade': they still get the precise answer.
    const { port, host } = await setup();
    const noConnection = await rawExchange(
      port,
      upgradeRequest(host, { headers: { Connection: 'keep-alive' } }).text,
    );
    expect(noConnection.status).toBe(400);
    expect(noConnection.body).toBe('The Connection header must contain "Upgrade".\n');
    const noUpgrade = await rawExchange(port, upgradeRequest(host, { headers: { Upgrade: null } }).text);
    expect(noUpgrade.status).toBe(400);
    expect(noUpgrade.body).toBe('The Upgrade header must contain "websocket".\n');
  });

  it.each([
    ['mixed-case tokens', { headers: { Upgrade: 'WebSocket', Connection: 'UPGRADE' } }],
    ['Connection as a list', { headers: { Connection: 'keep-alive, Upgrade' } }],
    ['Upgrade as a list', { headers: { Upgrade: 'foo/2, websocket' } }],
    [
      'lower-case header names',
      {
        headers: { Upgrade: null, Connection: null },
        extraLines: ['upgrade: websocket', 'connection: upgrade'],
      },
    ],
    [
      'Connection split over two lines',
      { headers: { Connection: 'keep-alive' }, extraLines: ['Connection: Upgrade'] },
    ],
  ] as const)('accepts %s', async (_name, spec) => {
    const { port, host } = await setup();
    const { text, key } = upgradeRequest(host, spec);
    const { response, socket } = await rawHandshake(port, text);
    expect(response.statusLine).toBe('HTTP/1.1 101 Switching Protocols');
    expect(response.headers.upgrade).toBe('websocket');
    expect(response.headers.connection).toBe('Upgrade');
    expect(response.headers['sec-websocket-accept']).toBe(acceptFor(key));
    socket.destroy();
  });

  it('keeps serving after a burst of malformed requests', async () => {
    const { wss, port, host } = await setup();
    const bad = [
      upgradeRequest(host, { headers: { 'Sec-WebSocket-Key': null } }).text,
      upgradeRequest(host, { method: 'PUT' }).text,
      upgradeRequest(host, { version: '1.0' }).text,
      upgradeRequest(host, { headers: { 'Sec-WebSocket-Version': '12' } }).text,
      upgradeRequest(host, { headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate; =' } }).text,
    ];
    const answers = await Promise.all(bad.map((text) => rawExchange(port, text)));
    expect(answers.map((a) => a.status)).toEqual([400, 405, 400, 426, 400]);
    expect(wss.clients.size).toBe(0);
    const ws = await open(`ws://${host}/after`);
    await ws.send('still here');
    expect(await firstText(ws)).toBe('still here');
  });
});

describe('handleUpgrade, attach and listen', () => {
  it('handleUpgrade() works from a plain http server and resolves with the connection', async () => {
    const wss = new WebSocketServer();
    const server = createServer();
    const results: Array<WebSocket | null> = [];
    const seen: string[] = [];
    server.on('upgrade', (req, socket, head) => {
      void wss
        .handleUpgrade(req, socket, head, (ws, info) => {
          seen.push(info.path);
          void echo(ws, info);
        })
        .then((ws) => results.push(ws));
    });
    const { port } = await plainServer(server);
    onCleanup(() => stopServer(wss));

    const ws = await open(`ws://${HOST}:${port}/anything/goes`);
    await ws.send('hi');
    expect(await firstText(ws)).toBe('hi');
    expect(seen).toEqual(['/anything/goes']);
    await waitFor(() => results.length === 1);
    expect(results[0]).toBeInstanceOf(WebSocket);
    expect(results[0]!.isServer).toBe(true);
    expect(wss.clients.has(results[0]!)).toBe(true);

    // A refused upgrade resolves with null and gets an HTTP answer.
    const res = await rawExchange(
      port,
      upgradeRequest(`${HOST}:${port}`, { headers: { 'Sec-WebSocket-Key': null } }).text,
    );
    expect(res.status).toBe(400);
    await waitFor(() => results.length === 2);
    expect(results[1]).toBeNull();
  });

  it('handleUpgrade() from a request event answers a request without Upgrade/Connection with 400', async () => {
    const wss = new WebSocketServer();
    const server = createServer((req) => {
      void wss.handleUpgrade(req, req.socket, Buffer.alloc(0), echo);
    });
    const { port } = await plainServer(server);
    onCleanup(() => stopServer(wss));
    const host = `${HOST}:${port}`;
    const noConnection = await rawExchange(
      port,
      upgradeRequest(host, { headers: { Connection: 'close' } }).text,
    );
    expect(noConnection.statusLine).toBe('HTTP/1.1 400 Bad Request');
    expect(noConnection.body).toBe('The Connection header must contain "Upgrade".\n');
    const noUpgrade = await rawExchange(port, upgradeRequest(host, { headers: { Upgrade: null } }).text);
    expect(noUpgrade.status).toBe(400);
    expect(noUpgrade.body).toBe('The Upgrade header must contain "websocket".\n');
  });

  it('attach() routes upgrades of an existing server and leaves its plain requests alone', async () => {
    const server = createServer((_req, res) => res.end('plain http'));
    const wss = new WebSocketServer().route('/ws', echo).attach(server);
    const { port } = await plainServer(server);
    onCleanup(() => stopServer(wss));

    const ws = await open(`ws://${HOST}:${port}/ws`);
    await ws.send('over attach');
    expect(await firstText(ws)).toBe('over attach');
    const res = await rawExchange(port, `GET /page HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    expect(res.status).toBe(200);
    expect(res.body).toBe('plain http');
  });

  it('listen(port, host) resolves with the address and answers plain HTTP with 426', async () => {
    const wss = new WebSocketServer().route('/*', echo);
    const address = await wss.listen(0, HOST);
    onCleanup(() => stopServer(wss));
    expect(address.address).toBe(HOST);
    expect(address.family).toBe('IPv4');
    expect(address.port).toBeGreaterThan(0);
    expect(wss.server?.listening).toBe(true);

    const res = await rawExchange(address.port, `GET / HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
    expect(res.statusLine).toBe('HTTP/1.1 426 Upgrade Required');
    expect(res.headers.upgrade).toBe('websocket');
    expect(res.body).toBe('Upgrade Required: this endpoint speaks WebSocket.\n');

    await expect(wss.listen(0, HOST)).rejects.toThrow(/already/);
  });
});

describe('origin checks and access hooks', () => {
  it('default: accepts no Origin and the same origin, refuses a foreign one with 403', async () => {
    const wss = new WebSocketServer().route('/*', echo);
    const port = await serve(wss);
    const url = `ws://${HOST}:${port}/`;

    await open(url);
    await open(url, { origin: `http://${HOST}:${port}` });
    await open(url, { origin: `https://${HOST}:${port}` });

    for (const origin of ['https://evil.example', `http://${HOST}:1`, `http://localhost:${port}`, 'null']) {
      const err = await connect(url, { origin }).catch((e: unknown) => e);
      expect(err, origin).toMatchObject({
        name: 'HandshakeError',
        response: { status: 403, body: 'Access denied\n' },
      });
    }
    const raw = await rawExchange(
      port,
      upgradeRequest(`${HOST}:${port}`, { headers: { Origin: 'https://evil.example' } }).text,
    );
    expect(raw.statusLine).toBe('HTTP/1.1 403 Forbidden');
    expect(raw.body).toBe('Access denied\n');
  });

  it('same-origin folds the default port of the scheme', async () => {
    const wss = new WebSocketServer().route('/*', echo);
    const port = await serve(wss);
    const { socket, response } = await rawHandshake(
      port,
      upgradeRequest('example.com', { headers: { Origin: 'http://example.com' } }).text,
    );
    expect(response.status).toBe(101);
    socket.destroy();
    const refused = await rawExchange(
      port,
      upgradeRequest('example.com', { headers: { Origin: 'http://example.com:8080' } }).text,
    );
    expect(refused.status).toBe(403);
  });

  it('origins: a list of allowed values (globs)', async () => {
    const wss = new WebSocketServer({ origins: ['https://a.example', 'https://*.b.example'] }).route(
      '/*',
      echo,
    );
    const port = await serve(wss);
    const url = `ws://${HOST}:${port}/`;
    await open(url, { origin: 'https://a.example' });
    await open(url, { origin: 'https://x.b.example' });
    await open(url); // no Origin: a non-browser client
    for (const origin of ['https://c.example', 'http://a.example', `http://${HOST}:${port}`]) {
      await expect(connect(url, { origin }), origin).rejects.toMatchObject({ response: { status: 403 } });
    }
  });

  it("origins: ['*'] allows any Origin", async () => {
    const wss = new WebSocketServer({ origins: ['*'] }).route('/*', echo);
    const port = await serve(wss);
    const ws = await open(`ws://${HOST}:${port}/`, { origin: 'https://anything.example' });
    expect(ws.readyState).toBe(WebSocket.OPEN);
  });

  it('origins: a predicate that sees the origin and the request', async () => {
    const calls: Array<[string, string]> = [];
    const wss = new WebSocketServer({
      origins: (origin, req) => {
        calls.push([origin, req.path]);
        return origin.endsWith('.trusted.example');
      },
    }).route('/*', echo);
    const port = await serve(wss);
    const url = `ws://${HOST}:${port}/room`;
    await open(url, { origin: 'https://app.trusted.example' });
    await expect(connect(url, { origin: 'https://evil.example' })).rejects.toMatchObject({
      response: { status: 403 },
    });
    expect(calls).toEqual([
      ['https://app.trusted.example', '/room'],
      ['https://evil.example', '/room'],
    ]);
  });

  it('acceptConnection (sync) replaces the origin check; false gives the default 403', async () => {
    const wss = new WebSocketServer({
      acceptConnection: (req) => req.query.get('token') === 'good',
    }).route('/*', echo);
    const port = await serve(wss);
    const base = `ws://${HOST}:${port}/`;
    // The hook decides alone: even a foreign Origin passes when it says yes.
    await open(`${base}?token=good`, { origin: 'https://elsewhere.example' });
    await expect(connect(`${base}?token=bad`)).rejects.toMatchObject({
      name: 'HandshakeError',
      response: { status: 403, body: 'Access denied\n' },
    });
  });

  it('acceptConnection (async) is awaited; a throwing or rejecting hook refuses', async () => {
    const wss = new WebSocketServer()
      .route('/async/*', echo, {
        acceptConnection: async (req) => {
          await new Promise((resolve) => setImmediate(resolve)); // settles in a later turn
          return req.headers['x-pass'] === 'yes';
        },
      })
      .route('/throws', echo, {
        acceptConnection: () => {
          throw new Error('boom');
        },
      })
      .route('/rejects', echo, { acceptConnection: () => Promise.reject(new Error('boom')) });
    const port = await serve(wss);
    const base = `ws://${HOST}:${port}`;
    await open(`${base}/async/1`, { headers: { 'X-Pass': 'yes' } });
    await expect(connect(`${base}/async/2`, { headers: { 'X-Pass': 'no' } })).rejects.toMatchObject({
      response: { status: 403 },
    });
    await expect(connect(`${base}/throws`)).rejects.toMatchObject({ response: { status: 403 } });
    await expect(connect(`${base}/rejects`)).rejects.toMatchObject({ response: { status: 403 } });
    expect(wss.clients.size).toBe(1);
  });

  it('a custom accessDenied writes its own status, headers and body', async () => {
    const wss = new WebSocketServer({
      acceptConnection: () => false,
      accessDenied: (req, reply) => reply(401, `no token for ${req.path}`, { 'WWW-Authenticate': 'Bearer' }),
    }).route('/*', echo);
    const port = await serve(wss);
    const res = await rawExchange(port, upgradeRequest(`${HOST}:${port}`, { path: '/secret' }).text);
    expect(res.statusLine).toBe('HTTP/1.1 401 Unauthorized');
    expect(res.headers['www-authenticate']).toBe('Bearer');
    expect(res.headers.connection).toBe('close');
    // The body is what the hook wrote, byte for byte.
    expect(res.body).toBe('no token for /secret');
  });

  it('an accessDenied that does not reply, or throws, falls back to 403', async () => {
    const wss = new WebSocketServer({ acceptConnection: () => false })
      .route('/silent', echo, { accessDenied: () => {} })
      .route('/throws', echo, {
        accessDenied: () => {
          throw new Error('oops');
        },
      });
    const port = await serve(wss);
    for (const path of ['/silent', '/throws']) {
      const res = await rawExchange(port, upgradeRequest(`${HOST}:${port}`, { path }).text);
      expect(res.status, path).toBe(403);
      expect(res.body, path).toBe('Access denied\n');
    }
  });

  it('per-route options override the server options', async () => {
    const wss = new WebSocketServer({ origins: ['https://a.example'], protocols: ['server-proto'] })
      .route('/open', echo, { origins: ['*'] })
      .route('/auth', echo, {
        acceptConnection: () => false,
        accessDenied: (_req, reply) => reply(401, 'login first'),
      })
      .route('/proto', echo, { protocols: ['route-proto'] })
      .route('/*', echo);
    const port = await serve(wss);
    const base = `ws://${HOST}:${port}`;

    await open(`${base}/open`, { origin: 'https://b.example' });
    await expect(connect(`${base}/strict`, { origin: 'https://b.example' })).rejects.toMatchObject({
      response: { status: 403 },
    });
    await open(`${base}/strict`, { origin: 'https://a.example' });
    await expect(connect(`${base}/auth`)).rejects.toMatchObject({
      response: { status: 401, body: 'login first' },
    });
    const offers = { protocols: ['server-proto', 'route-proto'] };
    expect((await open(`${base}/proto`, offers)).protocol).toBe('route-proto');
    expect((await open(`${base}/other`, offers)).protocol).toBe('server-proto');
  });

  it('maxConnections: 2 answers the third upgrade with 503, and frees the slot on close', async () => {
    const wss = new WebSocketServer({ maxConnections: 2 }).route('/*', echo);
    const port = await serve(wss);
    const url = `ws://${HOST}:${port}/`;
    const a = await open(url);
    await open(url);
    const err = await connect(url).catch((e: unknown) => e);
    expect(err).toMatchObject({
      name: 'HandshakeError',
      response: { status: 503, body: 'Too many connections\n' },
    });
    await a.close();
    await waitFor(() => wss.clients.size === 1);
    const c = await open(url);
    expect(c.readyState).toBe(WebSocket.OPEN);
  });
});

describe('subprotocols', () => {
  it("selects by the server's preference, not the client's", async () => {
    const wss = new WebSocketServer({ protocols: ['chat.v2', 'chat.v1'] });
    let serverSide: WebSocket | undefined;
    wss.route('/*', (ws) => {
      serverSide = ws;
    });
    const port = await serve(wss);
    const ws = await open(`ws://${HOST}:${port}/`, { protocols: ['chat.v1', 'chat.v2'] });
    expect(ws.protocol).toBe('chat.v2');
    await waitFor(() => serverSide !== undefined);
    expect(serverSide!.protocol).toBe('chat.v2');
  });

  it('matches globs: the first offered protocol matching the first fitting pattern', async () => {
    const wss = new WebSocketServer({ protocols: ['json.*', 'chat.v*'] }).route('/*', echo);
    const port = await serve(wss);
    const url = `ws://${HOST}:${port}/`;
    expect((await open(url, { protocols: ['x', 'chat.v3', 'chat.v1'] })).protocol).toBe('chat.v3');
    expect((await open(url, { protocols: ['chat.v1', 'json.rpc'] })).protocol).toBe('json.rpc');
  });

  it('sends no Sec-WebSocket-Protocol when nothing matches (and the handshake succeeds)', async () => {
    const wss = new WebSocketServer({ protocols: ['a', 'b*'] }).route('/*', echo);
    const port = await serve(wss);
    const { response, socket } = await rawHandshake(
      port,
      upgradeRequest(`${HOST}:${port}`, { headers: { 'Sec-WebSocket-Protocol': 'c, xb' } }).text,
    );
    expect(response.status).toBe(101);
    expect(response.headers['sec-websocket-protocol']).toBeUndefined();
    socket.destroy();

    const matched = await rawHandshake(
      port,
      upgradeRequest(`${HOST}:${port}`, { headers: { 'Sec-WebSocket-Protocol': 'c, bee' } }).text,
    );
    expect(matched.response.headers['sec-websocket-protocol']).toBe('bee');

    const ws = await open(`ws://${HOST}:${port}/`, { protocols: ['c'] });
    expect(ws.protocol).toBe('');
  });

  it('a server without protocols selects none', async () => {
    const wss = new WebSocketServer().route('/*', echo);
    const port = await serve(wss);
    const ws = await open(`ws://${HOST}:${port}/`, { protocols: ['chat'] });
    expect(ws.protocol).toBe('');
  });

  it('a chooser function picks among the offers; a pick that was not offered counts as none', async () => {
    const wss = new WebSocketServer()
      .route('/last', echo, { protocols: (offered) => offered[offered.length - 1] })
      .route('/bogus', echo, { protocols: () => 'never-offered' });
    const port = await serve(wss);
    const offers = { protocols: ['p1', 'p2', 'p3'] };
    expect((await open(`ws://${HOST}:${port}/last`, offers)).protocol).toBe('p3');
    expect((await open(`ws://${HOST}:${port}/bogus`, offers)).protocol).toBe('');
  });
});

describe('clients, find and publish', () => {
  it('clients grows with each connection and shrinks as they close', async () => {
    const wss = new WebSocketServer().route('/*', echo);
    const port = await serve(wss);
    const url = `ws://${HOST}:${port}/`;
    expect(wss.clients.size).toBe(0);
    const a = await open(url);
    expect(wss.clients.size).toBe(1);
    const b = await open(url);
    expect(wss.clients.size).toBe(2);
    for (const c of wss.clients) {
      expect(c).toBeInstanceOf(WebSocket);
      expect(c.isServer).toBe(true);
    }
    await a.close();
    await waitFor(() => wss.clients.size === 1);
    b.terminate();
    await waitFor(() => wss.clients.size === 0);
  });

  it('find() filters by remote host and port globs', async () => {
    const wss = new WebSocketServer().route('/*', echo);
    const port = await serve(wss);
    const url = `ws://${HOST}:${port}/`;
    const a = await open(url);
    const b = await open(url);
    expect(wss.find({ host: '127.0.0.*', port: '*' })).toHaveLength(2);
    expect(wss.find({})).toHaveLength(2);
    expect(wss.find({ host: '10.*' })).toEqual([]);
    const onlyA = wss.find({ port: String(a.localPort) });
    expect(onlyA).toHaveLength(1);
    expect(onlyA[0]!.remotePort).toBe(a.localPort);
    expect(onlyA[0]!.remotePort).not.toBe(b.localPort);
    expect(wss.find({ host: '127.0.0.1', port: String(b.localPort) })[0]!.remotePort).toBe(b.localPort);
  });

  it('publish() reaches only subscribers, returns the count, and honours unsubscribe', async () => {
    const wss = new WebSocketServer().route('/*', async (ws, req) => {
      if (req.query.get('sub') === '1') ws.subscribe('news');
      await ws.send('ready');
      for await (const msg of ws) {
        if (msg.text() === 'unsubscribe') {
          ws.unsubscribe('news');
          await ws.send('unsubscribed');
        }
      }
    });
    const port = await serve(wss);
    const base = `ws://${HOST}:${port}/`;
    const subA = await open(`${base}?sub=1`);
    const subB = await open(`${base}?sub=1`);
    const other = await open(base);
    for (const ws of [subA, subB, other]) expect(await firstText(ws)).toBe('ready');

    expect(wss.publish('news', 'headline 1')).toBe(2);
    expect(wss.publish('sports', 'nobody listens')).toBe(0);
    expect(await firstText(subA)).toBe('headline 1');
    expect(await firstText(subB)).toBe('headline 1');

    // Binary data is published as a binary message.
    expect(wss.publish('news', Buffer.from([1, 2, 3]))).toBe(2);
    const bin = await subA.receive();
    expect(bin?.type).toBe('binary');
    expect([...bin!.data]).toEqual([1, 2, 3]);
    expect((await subB.receive())?.type).toBe('binary');

    await subB.send('unsubscribe');
    expect(await firstText(subB)).toBe('unsubscribed');
    expect(wss.publish('news', 'headline 2')).toBe(1);
    expect(await firstText(subA)).toBe('headline 2');

    // Neither the non-subscriber nor the unsubscribed one got anything more.
    for (const ws of wss.clients) void ws.send('marker');
    expect(await firstText(other)).toBe('marker');
    expect(await firstText(subB)).toBe('marker');
    expect(await firstText(subA)).toBe('marker');

    // A closed subscriber is dropped from the topic.
    await subA.close();
    await waitFor(() => wss.clients.size === 2);
    expect(wss.publish('news', 'headline 3')).toBe(0);
  });
});

describe('close()', () => {
  it('sends going-away to every client and resolves once all are closed; later upgrades get 503', async () => {
    const server = createServer();
    const wss = new WebSocketServer().route('/*', echo).attach(server);
    const { port } = await plainServer(server);
    const url = `ws://${HOST}:${port}/`;
    const clients = [await open(url), await open(url), await open(url)];
    expect(wss.clients.size).toBe(3);

    await withTimeout(wss.close(1001, 'maintenance'), 5000, 'wss.close');
    expect(wss.clients.size).toBe(0);
    for (const ws of clients) {
      const info = await withTimeout(ws.closed, 2000, 'client closed');
      expect(info).toEqual({ code: 1001, reason: 'maintenance', wasClean: true });
      expect(ws.readyState).toBe(WebSocket.CLOSED);
    }

    const err = await connect(url).catch((e: unknown) => e);
    expect(err).toMatchObject({
      name: 'HandshakeError',
      response: { status: 503, body: 'The server is shutting down\n' },
    });
  });

  it('close() without arguments uses 1001, and stops the server started by listen()', async () => {
    const wss = new WebSocketServer().route('/*', echo);
    const port = await serve(wss);
    const ws = await open(`ws://${HOST}:${port}/`);
    await wss.close();
    expect((await ws.closed).code).toBe(1001);
    expect(wss.server?.listening).toBe(false);
    await expect(connect(`ws://${HOST}:${port}/`)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});

describe('close() on a fake clock', () => {
  useFakeClock();

  it('a client that never answers the Close does not block close() beyond closeTimeout', async () => {
    const wss = new WebSocketServer({ closeTimeout: 200 }).route('/*', echo);
    const port = await serve(wss);
    const { socket, response } = await rawHandshake(port, upgradeRequest(`${HOST}:${port}`).text);
    expect(response.status).toBe(101);
    socket.on('data', () => {}); // reads, never answers
    await waitFor(() => wss.clients.size === 1, 5000, 'the connection to open');
    const { elapsed } = await advanceUntil(wss.close(), { what: 'wss.close with a silent peer' });
    expect(elapsed).toBeGreaterThanOrEqual(200);
    expect(elapsed).toBeLessThanOrEqual(200 + 10);
    expect(wss.clients.size).toBe(0);
    await socketClosed(socket);
  });
});

describe('handler failures', () => {
  it('a throwing or rejecting handler closes only its connection with 1011', async () => {
    const errors: unknown[] = [];
    const logger = { debug() {}, info() {}, warn() {}, error: (obj: unknown) => errors.push(obj) };
    const wss = new WebSocketServer({ logger })
      .route('/throws', () => {
        throw new Error('sync failure');
      })
      .route('/rejects', async (ws) => {
        await ws.receive();
        throw new Error('async failure');
      })
      .route('/*', echo);
    const port = await serve(wss);
    const base = `ws://${HOST}:${port}`;
    const good = await open(`${base}/echo`);

    const t = await open(`${base}/throws`);
    expect(await withTimeout(t.closed, 5000, 'throws closed')).toMatchObject({ code: 1011 });

    const r = await open(`${base}/rejects`);
    await r.send('trigger');
    expect(await withTimeout(r.closed, 5000, 'rejects closed')).toMatchObject({ code: 1011 });

    await good.send('still fine');
    expect(await firstText(good)).toBe('still fine');
    expect(good.readyState).toBe(WebSocket.OPEN);
    expect(errors.length).toBeGreaterThanOrEqual(2);
  });

  it('a handler that returns leaves the connection open', async () => {
    const wss = new WebSocketServer().route('/*', (ws) => {
      ws.on('message', (msg) => void ws.send(`got ${msg.text()}`));
    });
    const port = await serve(wss);
    const ws = await open(`ws://${HOST}:${port}/`);
    // A Close sent when the handler returned would arrive before the answer to this ping.
    await withTimeout(ws.ping(), 5000, 'a ping round trip');
    expect(ws.readyState).toBe(WebSocket.OPEN);
    await ws.send('late');
    expect(await firstText(ws)).toBe('got late');
  });
});

describe('UpgradeRequest', () => {
  it('gives handlers url, path, query, headers, origin, remote address, protocols and extensions', async () => {
    let captured: UpgradeRequest | undefined;
    const wss = new WebSocketServer({ origins: ['*'] }).route('/room/*', (_ws, req) => {
      captured = req;
    });
    const port = await serve(wss);
    const ws = await open(`ws://${HOST}:${port}/room/42?token=abc&x=1&x=2`, {
      headers: { 'X-Custom': 'value' },
      origin: 'https://app.example',
      protocols: ['p1', 'p2'],
      perMessageDeflate: true,
    });
    await waitFor(() => captured !== undefined);
    const req = captured!;
    expect(req.url).toBe('/room/42?token=abc&x=1&x=2');
    expect(req.path).toBe('/room/42');
    expect(req.query.get('token')).toBe('abc');
    expect(req.query.getAll('x')).toEqual(['1', '2']);
    expect(req.params).toEqual({});
    expect(req.headers['x-custom']).toBe('value');
    expect(req.headers.host).toBe(`${HOST}:${port}`);
    expect(req.host).toBe(`${HOST}:${port}`);
    expect(req.origin).toBe('https://app.example');
    expect(req.remoteAddress).toBe(HOST);
    expect(req.remotePort).toBe(ws.localPort);
    expect(req.protocols).toEqual(['p1', 'p2']);
    expect(req.extensions).toHaveLength(1);
    expect(req.extensions[0]!.name).toBe('permessage-deflate');
    expect(req.raw.method).toBe('GET');
  });

  it('parses every offered extension with its parameters, in order', async () => {
    let captured: UpgradeRequest | undefined;
    const wss = new WebSocketServer().route('/*', (_ws, req) => {
      captured = req;
    });
    const port = await serve(wss);
    const { response, socket } = await rawHandshake(
      port,
      upgradeRequest(`${HOST}:${port}`, {
        headers: {
          'Sec-WebSocket-Extensions': 'x-foo; a=1; b, permessage-deflate; client_max_window_bits',
          'Sec-WebSocket-Protocol': 'one, two',
        },
      }).text,
    );
    expect(response.status).toBe(101);
    await waitFor(() => captured !== undefined);
    expect(captured!.origin).toBeUndefined();
    expect(captured!.protocols).toEqual(['one', 'two']);
    expect(captured!.extensions).toEqual([
      {
        name: 'x-foo',
        params: [
          ['a', '1'],
          ['b', true],
        ],
      },
      { name: 'permessage-deflate', params: [['client_max_window_bits', true]] },
    ]);
    socket.destroy();
  });
});

describe('robustness', () => {
  it('a client that disconnects during an async acceptConnection leaves no connection behind', async () => {
    let entered = false;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const wss = new WebSocketServer({
      acceptConnection: async () => {
        entered = true;
        await gate;
        return true;
      },
    }).route('/*', echo);
    const port = await serve(wss);
    const serverSocketClosed = new Promise<void>((resolve) =>
      wss.server?.once('connection', (s: Socket) => s.once('close', () => resolve())),
    );
    const socket = netConnect(port, HOST);
    onCleanup(() => socket.destroy());
    socket.on('error', () => {});
    socket.write(upgradeRequest(`${HOST}:${port}`).text);
    await waitFor(() => entered);
    socket.destroy();
    release();
    // Whether or not the handshake still completes, the server's socket closes and
    // nothing stays open for the gone peer.
    await withTimeout(serverSocketClosed, 5000, 'the server to close its socket');
    await waitFor(() => wss.clients.size === 0, 5000, 'connection of a gone peer cleaned up');
    // The server keeps serving.
    const ws = await open(`ws://${HOST}:${port}/`);
    await ws.send('ok');
    expect(await firstText(ws)).toBe('ok');
    expect(wss.clients.size).toBe(1);
  });
});
