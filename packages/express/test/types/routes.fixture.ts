/**
 * Compiled by types.test.ts with the TypeScript compiler (never run): each
 * `@ts-expect-error` must meet an error, everything else must compile. If the typing of
 * ws() regresses (req.params untyped, Router without ws), this file stops compiling.
 */
import { expressWs, originGuard, type WebSocketRouter } from '@wskit/express';
import express, { type Request } from 'express';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function assertType<T extends true>(): T | undefined {
  return undefined;
}

const { app } = expressWs(express());

app.ws('/chat/:room', (ws, req) => {
  assertType<Equal<typeof req.params.room, string>>();
  assertType<Equal<typeof req, Request<{ room: string }>>>();
  // @ts-expect-error: the path declares no such parameter
  void req.params.nope;
  // @ts-expect-error: a route parameter is a string
  const n: number = req.params.room;
  void n;
  void ws.send(req.params.room);
});

// Middleware and route options before the handler keep the parameters.
app.ws(
  '/rooms/:org/:room',
  originGuard(['https://partner.example']),
  (req, _res, next) => {
    assertType<Equal<typeof req.params.org, string>>();
    next();
  },
  { perMessageDeflate: true },
  (_ws, req) => {
    assertType<Equal<typeof req.params.org, string>>();
    assertType<Equal<typeof req.params.room, string>>();
  },
);

// Optional parameters (Express 5 syntax) are optional.
app.ws('/opt{/:id}', (_ws, req) => {
  assertType<Equal<typeof req.params.id, string | undefined>>();
});

// express.Router() has ws(), typed the same way, and returns the router.
const router = express.Router();
const same: typeof router = router.ws('/live/:id', (ws, req) => {
  assertType<Equal<typeof req.params.id, string>>();
  // @ts-expect-error: the path declares no such parameter
  void req.params.room;
  void ws.close();
});
void same;
const typed: WebSocketRouter = express.Router();
typed.ws(/^\/re\/(\d+)$/, (_ws, req) => {
  assertType<Equal<typeof req.params, Request['params']>>();
});

// @ts-expect-error: the last argument must be the handler
app.ws('/x', { origins: ['*'] });
// @ts-expect-error: the handler takes (ws, req), not an HTTP handler's (req, res)
app.ws('/y', (_ws, req: string) => void req);
