/**
 * The same adapter on Express 4 (installed as the `express4` alias): its router, its
 * path syntax (`:param?`, `*`), its finalhandler.
 */
import type { WebSocket } from '@wskit/core';
import { expressWs, originGuard, type WebSocketRouter } from '@wskit/express';
import cookieParser from 'cookie-parser';
import type { NextFunction, Request, Response } from 'express';
// @ts-expect-error: the alias has no type declarations of its own (the API is Express's)
import express4 from 'express4';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, HOST, open, refused, withTimeout } from '../../../test/support/clients.js';
import { appListen, nextText, portOf, rawUpgrade, recordingLogger, setup } from './helpers.js';

afterEach(cleanup);

// Typed with the Express 5 declarations, close enough for what these tests call.
const express = express4 as typeof import('express');

describe('Express 4', () => {
  it('routes with params (including optional ones), query, middleware order and cookies', async () => {
    const log: string[] = [];
    const { app, listen } = setup(express());
    app.use(cookieParser());
    app.use((req: Request, _res: Response, next: NextFunction) => {
      log.push(`app ${req.url}`);
      next();
    });
    app.ws(
      '/chat/:room/:sub?',
      (_req: Request, _res: Response, next: NextFunction) => {
        log.push('route');
        next();
      },
      (ws: WebSocket, req: Request) => {
        log.push('handler');
        void ws.send(
          JSON.stringify({ params: req.params, query: req.query, cookies: req.cookies, path: ws.path }),
        );
      },
    );
    const base = await listen();
    const ws = await open(`${base}/chat/lobby?x=1`, { headers: { Cookie: 'sid=s1' } });
    expect(JSON.parse(await nextText(ws))).toEqual({
      params: { room: 'lobby' },
      query: { x: '1' },
      cookies: { sid: 's1' },
      path: '/chat/lobby',
    });
    expect(log).toEqual(['app /chat/lobby?x=1', 'route', 'handler']);
    const sub = await open(`${base}/chat/lobby/thread`);
    expect(JSON.parse(await nextText(sub)).params).toEqual({ room: 'lobby', sub: 'thread' });
  });

  it('keeps HTTP routes (even a "*" catch-all) away from upgrades, and ws routes away from HTTP', async () => {
    const { app, listen, server } = setup(express());
    app.get('/same', (_req: Request, res: Response) => res.send('http'));
    app.ws('/same', (ws: WebSocket) => void ws.send('ws'));
    app.get('*', (_req: Request, res: Response) => res.send('catch-all'));
    const base = await listen();
    expect(await nextText(await open(`${base}/same`))).toBe('ws');
    expect((await request(server).get('/same')).text).toBe('http');
    expect((await request(server).get('/other')).text).toBe('catch-all');
    const err = await refused(`${base}/other`);
    expect(err.response?.status).toBe(404);
    expect(err.response?.body).toContain('Cannot GET /other');
  });

  it('answers refusals and errors of middleware on the socket', async () => {
    const { app, listen } = setup(express());
    app.ws(
      '/auth',
      (_req: Request, res: Response) => res.status(401).send('who are you?'),
      (ws: WebSocket) => void ws.send('never'),
    );
    app.ws(
      '/err',
      (_req: Request, _res: Response, next: NextFunction) => next(new Error('broken')),
      (ws: WebSocket) => void ws.send('never'),
    );
    const base = await listen();
    const denied = await refused(`${base}/auth`);
    expect(denied.response?.status).toBe(401);
    expect(denied.response?.body).toBe('who are you?');
    const failed = await refused(`${base}/err`);
    expect(failed.response?.status).toBe(500);
    expect(failed.response?.body).toContain('broken');
    const raw = await rawUpgrade(portOf(base), '/err');
    expect(raw.text).toMatch(/^HTTP\/1\.1 500 Internal Server Error\r\n/);
    expect(raw.closed).toBe(true);
  });

  it('serves mounted routers with merged params', async () => {
    const { app, listen } = setup(express());
    const router = express.Router({ mergeParams: true }) as WebSocketRouter;
    router.ws('/live/:id', (ws: WebSocket, req: Request) => {
      void ws.send(`${req.params.org}/${req.params.id} ${ws.path} ${req.baseUrl}`);
    });
    app.use('/api/:org', router);
    const base = await listen();
    expect(await nextText(await open(`${base}/api/acme/live/3`))).toBe('acme/3 /api/acme/live/3 /api/acme');
  });

  it('applies origins per app, per route and through originGuard()', async () => {
    const { app, listen, server } = setup(express(), { origins: ['https://app.example'] });
    app.ws('/app', (ws: WebSocket) => void ws.send('app'));
    app.ws('/route', { origins: ['https://route.example'] }, (ws: WebSocket) => void ws.send('route'));
    app.ws('/guard', originGuard(['https://app.example']), (ws: WebSocket) => void ws.send('guard'));
    app.get('/page', originGuard(['https://app.example']), (_req: Request, res: Response) =>
      res.send('page'),
    );
    const base = await listen();
    expect(await nextText(await open(`${base}/app`, { origin: 'https://app.example' }))).toBe('app');
    expect((await refused(`${base}/app`, { origin: 'https://route.example' })).response?.status).toBe(403);
    expect(await nextText(await open(`${base}/route`, { origin: 'https://route.example' }))).toBe('route');
    expect((await refused(`${base}/route`, { origin: 'https://app.example' })).response?.status).toBe(403);
    expect(await nextText(await open(`${base}/guard`, { origin: 'https://app.example' }))).toBe('guard');
    const guarded = await refused(`${base}/guard`, { origin: 'https://evil.example' });
    expect(guarded.response?.status).toBe(403);
    expect(guarded.response?.body).toBe('Access denied\n');
    const page = await request(server).get('/page').set('Origin', 'https://evil.example');
    expect(page.status).toBe(403);
  });

  it('closes with 1011 on a handler error, and with 1001 on shutdown', async () => {
    const { logger, calls } = recordingLogger();
    const { app, listen, wss } = setup(express(), { logger, logLevel: 'error' });
    app.ws('/fail', () => {
      throw new Error('handler broke');
    });
    app.ws('/idle', () => {});
    const base = await listen();
    const failing = await open(`${base}/fail`);
    expect((await withTimeout(failing.closed, 5000, 'handler error close')).code).toBe(1011);
    expect(
      calls.some((c) => c.level === 'error' && (c.obj as { err?: Error }).err?.message === 'handler broke'),
    ).toBe(true);
    const idle = await Promise.all([open(`${base}/idle`), open(`${base}/idle`)]);
    await withTimeout(wss.close(), 5000, 'wss.close()');
    const infos = await Promise.all(idle.map((ws) => withTimeout(ws.closed, 5000, 'closed')));
    expect(infos.map((i) => i.code)).toEqual([1001, 1001]);
  });

  it('hooks app.listen() servers, whose close() closes the clients', async () => {
    const { app, wss } = expressWs(express());
    app.ws('/x', (ws) => void ws.send('listen'));
    const { server, port } = await appListen(app, wss);
    const ws = await open(`ws://${HOST}:${port}/x`);
    expect(await nextText(ws)).toBe('listen');
    await withTimeout(new Promise<void>((resolve) => server.close(() => resolve())), 5000, 'server.close()');
    expect((await withTimeout(ws.closed, 5000, 'client closed')).code).toBe(1001);
  });
});
