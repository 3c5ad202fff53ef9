import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import { connect } from '@wskit/core';
import { expressWs, isWebSocketRequest, originGuard, type WebSocketRouter } from '@wskit/express';
import cookieParser from 'cookie-parser';
import express, { type NextFunction, type Request, type Response } from 'express';
import request from 'supertest';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  cleanup,
  echo,
  HOST,
  onCleanup,
  open,
  plainServer,
  refused,
  waitFor,
  withTimeout,
} from '../../../test/support/clients.js';
import { advanceUntil, FAKED } from '../../../test/support/clock.js';
import { appListen, nextText, portOf, rawUpgrade, recordingLogger, setup } from './helpers.js';

afterEach(cleanup);
afterEach(() => {
  vi.useRealTimers(); // runs first (afterEach hooks run newest first), for the cleanups
});

/** One turn of the event loop: an async middleware that settles later, not at once. */
const turn = () => new Promise((resolve) => setImmediate(resolve));

describe('routing', () => {
  it('gives the handler req.params and req.query, and the full path to the handshake', async () => {
    const { app, listen } = setup(express());
    app.ws('/chat/:room', (ws, req) => {
      void ws.send(
        JSON.stringify({
          params: req.params,
          query: req.query,
          url: req.url,
          path: ws.path,
          method: req.method,
        }),
      );
    });
    const base = await listen();
    const ws = await open(`${base}/chat/lobby?x=1&tag=a&tag=b`);
    expect(JSON.parse(await nextText(ws))).toEqual({
      params: { room: 'lobby' },
      query: { x: '1', tag: ['a', 'b'] },
      url: '/chat/lobby?x=1&tag=a&tag=b',
      path: '/chat/lobby',
      method: 'GET',
    });
  });

  it('passes the route parameters to acceptConnection through UpgradeRequest.params', async () => {
    const seen: Array<Record<string, string>> = [];
    const { app, listen } = setup(express(), {
      acceptConnection: (req) => {
        seen.push(req.params);
        return req.params.room !== 'forbidden' && req.query.get('k') === 'v';
      },
    });
    app.ws('/chat/:room', (ws) => void ws.send('in'));
    const base = await listen();
    expect(await nextText(await open(`${base}/chat/ok?k=v`))).toBe('in');
    expect((await refused(`${base}/chat/forbidden?k=v`)).response?.status).toBe(403);
    expect((await refused(`${base}/chat/ok?k=w`)).response?.status).toBe(403);
    expect(seen).toEqual([{ room: 'ok' }, { room: 'forbidden' }, { room: 'ok' }]);
  });

  it('understands Express 5 path syntax: named wildcards and optional segments', async () => {
    const { app, listen } = setup(express());
    app.ws('/files/*rest', (ws, req) => void ws.send(`files ${JSON.stringify(req.params.rest)}`));
    app.ws('/opt{/:id}', (ws, req) => void ws.send(`opt ${req.params.id ?? '-'}`));
    const base = await listen();
    expect(await nextText(await open(`${base}/files/a/b/c.txt`))).toBe('files ["a","b","c.txt"]');
    expect(await nextText(await open(`${base}/opt`))).toBe('opt -');
    expect(await nextText(await open(`${base}/opt/7`))).toBe('opt 7');
  });

  it('runs app middleware, then route middleware, then the handler, in order', async () => {
    const log: string[] = [];
    const { app, listen } = setup(express());
    app.use((req, _res, next) => {
      log.push(`app ${req.method} ${req.originalUrl} ws=${isWebSocketRequest(req)}`);
      next();
    });
    app.use('/ordered', (_req, _res, next) => {
      log.push('app /ordered');
      next();
    });
    app.ws(
      '/ordered/:id',
      (_req, _res, next) => {
        log.push('route 1');
        next();
      },
      [
        async (req: Request, _res: Response, next: NextFunction) => {
          await turn();
          log.push(`route 2 id=${req.params.id}`);
          next();
        },
      ],
      (ws) => {
        log.push('handler');
        void ws.send('done');
      },
    );
    app.use((_req, _res, next) => {
      log.push('after the route (never)');
      next();
    });
    const base = await listen();
    expect(await nextText(await open(`${base}/ordered/9?q=1`))).toBe('done');
    expect(log).toEqual([
      'app GET /ordered/9?q=1 ws=true',
      'app /ordered',
      'route 1',
      'route 2 id=9',
      'handler',
    ]);
  });

  it('lets cookie-parser read the cookies of the upgrade request', async () => {
    const { app, listen } = setup(express());
    app.use(cookieParser('s3cret'));
    app.ws(
      '/me',
      (ws, req) => void ws.send(JSON.stringify({ cookies: req.cookies, signed: req.signedCookies })),
    );
    const base = await listen();
    // cookie-parser's signed-cookie format: "s:" + value + "." + base64(HMAC-SHA256) without padding.
    const mac = createHmac('sha256', 's3cret').update('alice').digest('base64').replace(/=+$/, '');
    const signed = `s:alice.${mac}`;
    const ws = await open(`${base}/me`, {
      headers: { Cookie: `sid=abc123; theme=dark; user=${encodeURIComponent(signed)}` },
    });
    expect(JSON.parse(await nextText(ws))).toEqual({
      cookies: { sid: 'abc123', theme: 'dark' },
      signed: { user: 'alice' },
    });
  });

  it('keeps plain HTTP routes and ws routes apart on the same path', async () => {
    const { app, listen, server } = setup(express());
    // An HTTP route declared before the ws route on the same path...
    app.get('/both', (_req, res) => {
      res.send('http before');
    });
    app.ws('/both', (ws) => void ws.send('websocket'));
    // ...and a catch-all declared after it: neither may answer an upgrade.
    app.get('/{*any}', (_req, res) => {
      res.send('catch-all');
    });
    const base = await listen();
    expect(await nextText(await open(`${base}/both`))).toBe('websocket');
    const http = await request(server).get('/both');
    expect(http.status).toBe(200);
    expect(http.text).toBe('http before');
    expect((await request(server).get('/elsewhere')).text).toBe('catch-all');
    // The catch-all never sees an upgrade: an unmatched ws path is Express's 404.
    const err = await refused(`${base}/elsewhere`);
    expect(err.response?.status).toBe(404);
  });

  it('lets a plain GET fall through a ws-only path to the next HTTP route or the 404', async () => {
    const { app, listen, server } = setup(express());
    app.ws('/only-ws', (ws) => void ws.send('hi'));
    app.ws('/shared', (ws) => void ws.send('hi'));
    app.get('/shared', (_req, res) => {
      res.type('text').send('http after');
    });
    await listen();
    const missing = await request(server).get('/only-ws');
    expect(missing.status).toBe(404);
    expect(missing.text).toContain('Cannot GET /only-ws');
    const shared = await request(server).get('/shared');
    expect(shared.status).toBe(200);
    expect(shared.text).toBe('http after');
  });

  it("answers an unmatched path with Express's own 404 on the socket, then closes it", async () => {
    const { app, listen } = setup(express());
    app.ws('/chat', (ws) => void ws.send('hi'));
    const base = await listen();
    const err = await refused(`${base}/nope?x=1`);
    expect(err.response?.status).toBe(404);
    expect(err.response?.body).toContain('Cannot GET /nope');
    expect(err.response?.headers['content-type']).toMatch(/text\/html/);
    const raw = await rawUpgrade(portOf(base), '/nope');
    expect(raw.text.startsWith('HTTP/1.1 404 Not Found\r\n')).toBe(true);
    expect(raw.text).toMatch(/\r\nconnection: close\r\n/i);
    expect(raw.closed).toBe(true);
  });

  it('serves routes of mounted routers, with their own middleware', async () => {
    const log: string[] = [];
    const { app, listen } = setup(express());
    const api = express.Router() as WebSocketRouter;
    api.use((req, _res, next) => {
      log.push(`api mw ${req.baseUrl} ${req.url}`);
      next();
    });
    api.ws('/live/:id', (ws, req) => {
      void ws.send(
        JSON.stringify({ id: req.params.id, q: req.query.q, baseUrl: req.baseUrl, path: ws.path }),
      );
    });
    const nested = express.Router({ mergeParams: true }) as WebSocketRouter;
    nested.ws('/feed', (ws, req) => void ws.send(`feed of ${req.params.org}`));
    api.use('/orgs/:org', nested);
    app.use('/api', api);
    const base = await listen();
    expect(JSON.parse(await nextText(await open(`${base}/api/live/7?q=z`)))).toEqual({
      id: '7',
      q: 'z',
      baseUrl: '/api',
      path: '/api/live/7',
    });
    expect(await nextText(await open(`${base}/api/orgs/acme/feed`))).toBe('feed of acme');
    expect(log).toEqual(['api mw /api /live/7?q=z', 'api mw /api /orgs/acme/feed']);
    expect((await refused(`${base}/api/live`)).response?.status).toBe(404);
  });

  it('labels connections with the route pattern, mount paths included (stats, metrics)', async () => {
    const { app, wss, listen } = setup(express());
    const api = express.Router() as WebSocketRouter;
    api.ws('/live/:id', () => {});
    const nested = express.Router({ mergeParams: true }) as WebSocketRouter;
    nested.ws('/feed', () => {});
    api.use('/orgs/:org', nested);
    app.use('/api', api);
    app.ws('/top', () => {});
    const base = await listen();
    for (const path of ['/api/live/7', '/api/live/8', '/api/orgs/acme/feed', '/top'])
      await open(`${base}${path}`);
    await waitFor(() => wss.clients.size === 4);
    expect([...wss.clients].map((ws) => ws.route).sort()).toEqual([
      '/api/live/:id',
      '/api/live/:id',
      '/api/orgs/:org/feed',
      '/top',
    ]);
    expect(wss.stats().connectionsByRoute).toEqual({
      '/api/live/:id': 2,
      '/api/orgs/:org/feed': 1,
      '/top': 1,
    });
  });

  it('adds ws() to routers made before expressWs() and through applyTo()', async () => {
    const early = express.Router();
    const app = express();
    const { app: wsApp, applyTo, listen } = setup(app);
    const applied = applyTo(early);
    applied.ws('/early', (ws) => void ws.send('early'));
    wsApp.use('/r', applied);
    const base = await listen();
    expect(await nextText(await open(`${base}/r/early`))).toBe('early');
  });

  it('serves ws routes of a mounted sub-app given ws() by applyTo(), with the options of its instance', async () => {
    const { app, applyTo, listen } = setup(express(), { origins: ['https://main.example'] });
    const sub = applyTo(express());
    sub.use((req, _res, next) => {
      req.headers['x-sub'] = 'yes';
      next();
    });
    sub.ws('/feed/:id', (ws, req) => void ws.send(`${req.params.id} ${req.headers['x-sub']} ${ws.path}`));
    app.use('/sub', sub);
    const base = await listen();
    const ws = await open(`${base}/sub/feed/4`, { origin: 'https://main.example' });
    expect(await nextText(ws)).toBe('4 yes /sub/feed/4');
    expect((await refused(`${base}/sub/feed/4`, { origin: 'https://other.example' })).response?.status).toBe(
      403,
    );
  });

  it('routes the upgrades of every attached server through the same app', async () => {
    const { app, attach, listen, wss } = setup(express());
    app.ws('/where', (ws, req) => void ws.send(`port ${req.socket.localPort}`));
    const base = await listen();
    const second = createServer(app);
    attach(second);
    attach(second); // twice: still one listener
    expect(second.listenerCount('upgrade')).toBe(1);
    const { port: port2 } = await plainServer(second);
    expect(await nextText(await open(`${base}/where`))).toBe(`port ${portOf(base)}`);
    expect(await nextText(await open(`ws://${HOST}:${port2}/where`))).toBe(`port ${port2}`);
    expect(wss.clients.size).toBe(2);
  });

  it('hooks the servers that app.listen() creates when no server is given', async () => {
    const { app, wss } = expressWs(express());
    app.ws('/x', (ws) => void ws.send('from app.listen'));
    const server = app.listen(0, HOST);
    onCleanup(async () => {
      for (const ws of wss.clients) ws.terminate();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    const { port } = server.address() as { port: number };
    expect(await nextText(await open(`ws://${HOST}:${port}/x`))).toBe('from app.listen');
  });

  it('refuses to be set up twice on the same app, and rejects malformed ws() calls', () => {
    const { app } = setup(express());
    expect(() => expressWs(app)).toThrow(/already/);
    expect(() => expressWs({} as never)).toThrow(TypeError);
    expect(() => app.ws('/x', (() => {}) as never, 'not a handler' as never)).toThrow(/handler/);
    expect(() => app.ws('/x', { origins: ['*'] } as never, (() => {}) as never, () => {})).toThrow(
      /options go right before the handler/,
    );
    expect(() => app.ws('/x', { closeTimeout: -1 }, () => {})).toThrow(RangeError);
  });
});

describe('refusals from middleware', () => {
  const auth = (req: Request, res: Response, next: NextFunction): void => {
    if (req.query.token === 'good') {
      next();
      return;
    }
    res.status(401).set('WWW-Authenticate', 'Bearer').type('text').send('missing or bad token');
  };

  it('lets an auth middleware answer 401 with a body instead of the handshake', async () => {
    const reached: string[] = [];
    const { app, listen, server } = setup(express());
    app.use('/secure', auth);
    app.ws('/secure/feed', (ws) => {
      reached.push('handler');
      void ws.send('secret');
    });
    app.get('/secure/page', (_req, res) => {
      res.send('page');
    });
    const base = await listen();
    const err = await refused(`${base}/secure/feed?token=bad`);
    expect(err.response?.status).toBe(401);
    expect(err.response?.body).toBe('missing or bad token');
    expect(err.response?.headers['www-authenticate']).toBe('Bearer');
    expect(reached).toEqual([]);
    expect(await nextText(await open(`${base}/secure/feed?token=good`))).toBe('secret');
    expect(reached).toEqual(['handler']);
    // The same middleware answers plain HTTP the same way.
    const http = await request(server).get('/secure/page');
    expect(http.status).toBe(401);
    expect(http.text).toBe('missing or bad token');
    expect((await request(server).get('/secure/page?token=good')).text).toBe('page');
  });

  it('writes the refusal onto the socket and closes it', async () => {
    const { app, listen } = setup(express());
    app.ws('/secure', auth, (ws) => void ws.send('x'));
    const base = await listen();
    const raw = await rawUpgrade(portOf(base), '/secure');
    expect(raw.text).toMatch(/^HTTP\/1\.1 401 Unauthorized\r\n/);
    expect(raw.text.endsWith('\r\n\r\nmissing or bad token')).toBe(true);
    expect(raw.closed).toBe(true);
  });

  it("turns next(err) into Express's error response (500, or err.status) and closes the socket", async () => {
    const { app, listen } = setup(express());
    app.ws(
      '/boom',
      (_req, _res, next) => next(new Error('kaboom')),
      (ws) => void ws.send('never'),
    );
    app.ws(
      '/teapot',
      async () => {
        throw Object.assign(new Error('short and stout'), { status: 418 });
      },
      (ws) => void ws.send('never'),
    );
    const base = await listen();
    const err = await refused(`${base}/boom`);
    expect(err.response?.status).toBe(500);
    expect(err.response?.body).toContain('kaboom');
    expect((await refused(`${base}/teapot`)).response?.status).toBe(418);
    const raw = await rawUpgrade(portOf(base), '/boom');
    expect(raw.text).toMatch(/^HTTP\/1\.1 500 Internal Server Error\r\n/);
    expect(raw.closed).toBe(true);
  });

  it('uses a custom error handler of the app for upgrade requests', async () => {
    const { app, listen } = setup(express());
    app.ws(
      '/bad',
      (_req, _res, next) => next(Object.assign(new Error('nope'), { status: 409 })),
      () => {},
    );
    app.use((err: Error & { status?: number }, _req: Request, res: Response, _next: NextFunction) => {
      res.status(err.status ?? 500).json({ error: err.message });
    });
    const base = await listen();
    const err = await refused(`${base}/bad`);
    expect(err.response?.status).toBe(409);
    expect(JSON.parse(err.response?.body ?? '')).toEqual({ error: 'nope' });
  });

  it('lets middleware tell upgrades from plain requests with isWebSocketRequest()', async () => {
    const { app, listen, server } = setup(express());
    app.use('/app', (req, res, next) => {
      if (req.headers.authorization === 'yes') return next();
      if (isWebSocketRequest(req)) return void res.status(401).send('log in first');
      res.redirect('/login');
    });
    app.ws('/app/live', (ws) => void ws.send('live'));
    const base = await listen();
    expect((await refused(`${base}/app/live`)).response?.status).toBe(401);
    const http = await request(server).get('/app/live');
    expect(http.status).toBe(302);
    expect(http.headers.location).toBe('/login');
    expect(await nextText(await open(`${base}/app/live`, { headers: { Authorization: 'yes' } }))).toBe(
      'live',
    );
  });

  it('drops an upgrade that no middleware ever answers after handshakeTimeout', async () => {
    vi.useFakeTimers({ toFake: [...FAKED] });
    const { app, listen } = setup(express(), { handshakeTimeout: 200 });
    app.use('/stall', () => {
      // Never answers, never calls next().
    });
    app.ws('/stall', (ws) => void ws.send('never'));
    const base = await listen();
    const { value: raw, elapsed } = await advanceUntil(rawUpgrade(portOf(base), '/stall', {}, 5000));
    expect(raw.closed).toBe(true);
    expect(raw.text).toBe('');
    expect(elapsed).toBeGreaterThanOrEqual(200 - 10); // the timer may start a step in
    expect(elapsed).toBeLessThanOrEqual(200 + 10);
  });

  it("leaves handshake validation to the core: a bad upgrade request gets the core's 400", async () => {
    const { app, listen } = setup(express());
    app.ws('/v', (ws) => void ws.send('x'));
    const base = await listen();
    const raw = await rawUpgrade(portOf(base), '/v', {}, 5000, ['Sec-WebSocket-Key']);
    expect(raw.text).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(raw.text).toContain('Sec-WebSocket-Key');
    expect(raw.closed).toBe(true);
  });
});

describe('origins and access hooks', () => {
  it('applies the app-level origins to every route', async () => {
    const { app, listen } = setup(express(), {
      origins: ['https://good.example', 'https://*.trusted.example'],
    });
    app.ws('/a', (ws) => void ws.send('a'));
    const base = await listen();
    expect(await nextText(await open(`${base}/a`, { origin: 'https://good.example' }))).toBe('a');
    expect(await nextText(await open(`${base}/a`, { origin: 'https://x.trusted.example' }))).toBe('a');
    expect(await nextText(await open(`${base}/a`))).toBe('a'); // no Origin: not a browser
    const err = await refused(`${base}/a`, { origin: 'https://evil.example' });
    expect(err.response?.status).toBe(403);
    expect(err.response?.body.trim()).toBe('Access denied');
  });

  it('refuses cross-origin browsers by default (same-origin only)', async () => {
    const { app, listen } = setup(express());
    app.ws('/a', (ws) => void ws.send('a'));
    const base = await listen();
    const port = new URL(base).port;
    expect(await nextText(await open(`${base}/a`, { origin: `http://${HOST}:${port}` }))).toBe('a');
    expect((await refused(`${base}/a`, { origin: 'https://elsewhere.example' })).response?.status).toBe(403);
  });

  it('lets a route override the app-level origins and access hooks', async () => {
    const { app, listen } = setup(express(), { origins: ['https://app.example'] });
    app.ws('/open', { origins: ['*'] }, (ws) => void ws.send('open'));
    app.ws('/partner', { origins: ['https://partner.example'] }, (ws) => void ws.send('partner'));
    app.ws(
      '/keyed',
      {
        acceptConnection: (req) => req.query.get('key') === 'k1',
        accessDenied: (_req, reply) => reply(401, 'need a key', { 'WWW-Authenticate': 'Key' }),
      },
      (ws) => void ws.send('keyed'),
    );
    app.ws('/default', (ws) => void ws.send('default'));
    const base = await listen();
    expect(await nextText(await open(`${base}/open`, { origin: 'https://anyone.example' }))).toBe('open');
    expect(await nextText(await open(`${base}/partner`, { origin: 'https://partner.example' }))).toBe(
      'partner',
    );
    expect((await refused(`${base}/partner`, { origin: 'https://app.example' })).response?.status).toBe(403);
    expect(await nextText(await open(`${base}/default`, { origin: 'https://app.example' }))).toBe('default');
    expect((await refused(`${base}/default`, { origin: 'https://partner.example' })).response?.status).toBe(
      403,
    );
    expect(await nextText(await open(`${base}/keyed?key=k1`))).toBe('keyed');
    const err = await refused(`${base}/keyed?key=k2`);
    expect(err.response?.status).toBe(401);
    expect(err.response?.body.trim()).toBe('need a key');
    expect(err.response?.headers['www-authenticate']).toBe('Key');
  });

  it('provides originGuard() as route middleware for upgrades and plain HTTP alike', async () => {
    const log: string[] = [];
    const { app, listen, server } = setup(express(), { origins: ['*'] });
    const guard = originGuard(['https://a.example', 'https://*.b.example']);
    app.ws(
      '/guarded',
      guard,
      (_req, _res, next) => {
        log.push('after guard');
        next();
      },
      (ws) => void ws.send('welcome'),
    );
    app.get('/page', guard, (_req, res) => {
      res.send('page');
    });
    app.get(
      '/custom',
      originGuard(['https://a.example'], { status: 451, message: 'not here' }),
      (_req, res) => {
        res.send('custom');
      },
    );
    const base = await listen();
    expect(await nextText(await open(`${base}/guarded`, { origin: 'https://a.example' }))).toBe('welcome');
    expect(await nextText(await open(`${base}/guarded`, { origin: 'https://x.b.example' }))).toBe('welcome');
    const err = await refused(`${base}/guarded`, { origin: 'https://evil.example' });
    expect(err.response?.status).toBe(403);
    expect(err.response?.body).toBe('Access denied\n');
    expect(log).toEqual(['after guard', 'after guard']);

    const denied = await request(server).get('/page').set('Origin', 'https://evil.example');
    expect(denied.status).toBe(403);
    expect(denied.text).toBe('Access denied\n');
    expect((await request(server).get('/page').set('Origin', 'https://a.example')).text).toBe('page');
    expect((await request(server).get('/page')).text).toBe('page'); // no Origin
    const custom = await request(server).get('/custom').set('Origin', 'https://evil.example');
    expect(custom.status).toBe(451);
    expect(custom.text).toBe('not here\n');
  });

  it("lets a route's originGuard() replace the app-level origin check for that route", async () => {
    // The README's shape: the app allows its own origin, a mounted route a partner's.
    const { app, listen } = setup(express(), { origins: ['https://app.example'] });
    const api = express.Router();
    api.ws('/live/:id', originGuard(['https://partner.example']), (ws, req) => void ws.send(req.params.id));
    app.use('/api', api);
    app.ws('/own', (ws) => void ws.send('own'));
    const base = await listen();
    expect(await nextText(await open(`${base}/api/live/7`, { origin: 'https://partner.example' }))).toBe('7');
    expect(await nextText(await open(`${base}/api/live/8`))).toBe('8'); // no Origin: not a browser
    // Replaced, not added to: the app's own origin is not on this route's list.
    expect((await refused(`${base}/api/live/7`, { origin: 'https://app.example' })).response?.status).toBe(
      403,
    );
    expect((await refused(`${base}/api/live/7`, { origin: 'https://evil.example' })).response?.status).toBe(
      403,
    );
    // Other routes keep the app-level check.
    expect(await nextText(await open(`${base}/own`, { origin: 'https://app.example' }))).toBe('own');
    expect((await refused(`${base}/own`, { origin: 'https://partner.example' })).response?.status).toBe(403);
  });

  it('accepts an origin predicate in originGuard()', async () => {
    const { app, listen } = setup(express(), { origins: ['*'] });
    app.ws(
      '/p/:room',
      originGuard((origin, req) => origin.endsWith('.example') && req.path.startsWith('/p/')),
      (ws) => void ws.send('ok'),
    );
    const base = await listen();
    expect(await nextText(await open(`${base}/p/1`, { origin: 'https://x.example' }))).toBe('ok');
    expect((await refused(`${base}/p/1`, { origin: 'https://x.test' })).response?.status).toBe(403);
  });

  it('applies per-route protocols and deflate', async () => {
    const { app, listen } = setup(express());
    app.ws('/proto', { protocols: ['chat.v2', 'chat.v1'], perMessageDeflate: true }, (ws) => {
      void ws.send(`${ws.protocol}|${ws.extensions}`);
    });
    app.ws('/plain', (ws) => void ws.send(`${ws.protocol}|${ws.extensions}`));
    const base = await listen();
    const ws = await open(`${base}/proto`, { protocols: ['chat.v1', 'chat.v2'], perMessageDeflate: true });
    expect(ws.protocol).toBe('chat.v2');
    expect(await nextText(ws)).toMatch(/^chat\.v2\|permessage-deflate/);
    const plain = await open(`${base}/plain`, { protocols: ['chat.v1'], perMessageDeflate: true });
    expect(plain.protocol).toBe('');
    expect(await nextText(plain)).toBe('|');
  });
});

describe('connections', () => {
  it('closes with 1011 when a handler throws or rejects, and logs it', async () => {
    const { logger, calls } = recordingLogger();
    const { app, listen } = setup(express(), { logger, logLevel: 'error' });
    app.ws('/throws', () => {
      throw new Error('sync failure');
    });
    app.ws('/rejects', async (ws) => {
      await ws.receive();
      throw new Error('async failure');
    });
    const base = await listen();
    const a = await open(`${base}/throws`);
    const closedA = await withTimeout(a.closed, 5000, 'close of /throws');
    expect(closedA.code).toBe(1011);
    const b = await open(`${base}/rejects`);
    await b.send('go');
    const closedB = await withTimeout(b.closed, 5000, 'close of /rejects');
    expect(closedB.code).toBe(1011);
    await waitFor(() => calls.filter((c) => c.level === 'error').length >= 2, 5000, 'two errors logged');
    const messages = calls
      .filter((c) => c.level === 'error')
      .map((c) => ((c.obj as { err?: Error }).err as Error | undefined)?.message);
    expect(messages).toEqual(expect.arrayContaining(['sync failure', 'async failure']));
  });

  it('echoes text and binary messages', async () => {
    const { app, listen } = setup(express());
    app.ws('/echo', echo);
    const base = await listen();
    const ws = await open(`${base}/echo`);
    await ws.send('hello');
    expect(await nextText(ws)).toBe('hello');
    await ws.send(Buffer.from([1, 2, 3]));
    const msg = await withTimeout(ws.receive(), 5000, 'binary echo');
    expect(msg?.type).toBe('binary');
    expect([...(msg?.data ?? [])]).toEqual([1, 2, 3]);
  });

  it('serves 50 concurrent clients, through middleware, all at once', async () => {
    let middlewareRuns = 0;
    const { app, listen, wss } = setup(express());
    app.use(async (_req, _res, next) => {
      middlewareRuns++;
      await turn();
      next();
    });
    app.ws('/echo/:n', async (ws, req) => {
      for await (const msg of ws) await ws.send(`${req.params.n}:${msg.text()}`);
    });
    const base = await listen();
    const clients = await Promise.all(Array.from({ length: 50 }, (_, i) => open(`${base}/echo/${i}`)));
    expect(wss.clients.size).toBe(50);
    const answers = await Promise.all(
      clients.map(async (ws, i) => {
        await ws.send(`ping${i}`);
        return nextText(ws);
      }),
    );
    expect(answers).toEqual(clients.map((_, i) => `${i}:ping${i}`));
    expect(middlewareRuns).toBe(50);
  });

  it('broadcasts with wss.publish() to subscribed clients', async () => {
    const { app, listen, wss } = setup(express());
    app.ws('/room/:name', (ws, req) => {
      ws.subscribe(`room:${req.params.name}`);
      void ws.send('joined');
    });
    const base = await listen();
    const a = await open(`${base}/room/red`);
    const b = await open(`${base}/room/red`);
    const c = await open(`${base}/room/blue`);
    for (const ws of [a, b, c]) expect(await nextText(ws)).toBe('joined');
    expect(wss.publish('room:red', 'hello red')).toBe(2);
    expect(await nextText(a)).toBe('hello red');
    expect(await nextText(b)).toBe('hello red');
    wss.publish('room:blue', 'hello blue');
    expect(await nextText(c)).toBe('hello blue');
  });
});

describe('shutdown', () => {
  it('wss.close() closes every client with 1001 and refuses new upgrades', async () => {
    const { app, listen, wss } = setup(express());
    app.ws('/x', () => {});
    const base = await listen();
    const clients = await Promise.all([open(`${base}/x`), open(`${base}/x`), open(`${base}/x`)]);
    await withTimeout(wss.close(), 5000, 'wss.close()');
    const infos = await Promise.all(clients.map((ws) => withTimeout(ws.closed, 5000, 'client closed')));
    expect(infos.map((i) => i.code)).toEqual([1001, 1001, 1001]);
    expect(wss.clients.size).toBe(0);
    expect((await refused(`${base}/x`)).response?.status).toBe(503);
  });

  it('server.close() also closes the WebSocket clients with 1001, so it completes', async () => {
    const app = express();
    const { app: wsApp, wss } = expressWs(app);
    wsApp.ws('/x', () => {});
    const { server, port } = await appListen(wsApp, wss);
    const clients = await Promise.all([1, 2].map(() => connect(`ws://${HOST}:${port}/x`)));
    onCleanup(() => {
      for (const ws of clients) ws.terminate();
    });
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    await withTimeout(closed, 5000, 'server.close() callback');
    const infos = await Promise.all(clients.map((ws) => withTimeout(ws.closed, 5000, 'client closed')));
    expect(infos.map((i) => i.code)).toEqual([1001, 1001]);
  });
});
