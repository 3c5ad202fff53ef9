/**
 * Regression tests for defects found in review (each failed on the code before its fix):
 * published frames queue in order behind pending sends, are not dropped by a following
 * close() and are not starved by a busy queue; pings are answered while our Close waits
 * behind queued sends; a connection terminated inside its keepalive callback is removed
 * from the shared keepalive timer; the deferred-Close timer is cleared when the connection
 * ends.
 */
import { randomBytes } from 'node:crypto';
import { type Message, Opcode, WebSocket } from '@wskit/core';
import { describe, expect, it, vi } from 'vitest';
import { open, resourcesPerTest, stopServer } from '../../../../test/support/clients.js';
import { advanceUntil, useFakeClock } from '../../../../test/support/clock.js';
import { closePayload, rawClient, startServer, waitFor, within } from './raw.js';
import { nextConnection } from './util.js';

const res = resourcesPerTest();

const KiB = 1024;
const MiB = 1024 * 1024;
const noop = (): void => {};

/**
 * Watches the timers made with the global setTimeout from now on (the library's own
 * timers are): `pending()` lists the delays of those that neither fired nor were
 * cleared and still keep the process alive. (The worker's process-wide Timeout count is
 * no use here: the test runner's own timers come and go and can hide a leaked one.)
 */
function watchTimers(): { pending: () => number[] } {
  const realSet = globalThis.setTimeout;
  const realClear = globalThis.clearTimeout;
  const live = new Map<NodeJS.Timeout, number>();
  const patchedSet = (fn: (...args: unknown[]) => void, ms?: number, ...args: unknown[]): NodeJS.Timeout => {
    const timer = realSet(
      (...a: unknown[]) => {
        live.delete(timer);
        fn(...a);
      },
      ms,
      ...args,
    );
    live.set(timer, ms ?? 0);
    return timer;
  };
  const patchedClear = (timer: NodeJS.Timeout | string | number | undefined): void => {
    if (typeof timer === 'object') live.delete(timer);
    realClear(timer);
  };
  globalThis.setTimeout = patchedSet as typeof setTimeout;
  globalThis.clearTimeout = patchedClear as typeof clearTimeout;
  res.add(() => {
    globalThis.setTimeout = realSet;
    globalThis.clearTimeout = realClear;
  });
  return { pending: () => [...live].filter(([timer]) => timer.hasRef()).map(([, ms]) => ms) };
}

/** Waits (a few seconds at most) until no watched timer is left pending. */
async function noTimersLeft(timers: { pending: () => number[] }): Promise<void> {
  await waitFor(() => timers.pending().length === 0, 3000, 'no pending timer').catch(() => {
    throw new Error(`timers still pending (delays in ms): ${timers.pending().join(', ')}`);
  });
}

/** The first character of each text message, '#' for binary ones. */
const tag = (msg: Message): string => (msg.type === 'text' ? msg.text()[0]! : '#');

/** A client that negotiates permessage-deflate with the server. */
const deflateClient = (url: string) => open(url, { perMessageDeflate: true, maxMessageSize: 16 * MiB }, res);

describe('publish() alongside queued sends (permessage-deflate)', () => {
  // Large and compressible: compressed, so each of these sends is queued (async deflate).
  const big = 'x'.repeat(2000);

  it('keeps send/publish order: A, P, B, C', async () => {
    const next = nextConnection();
    const { wss, url } = await startServer(res, next.handler, { perMessageDeflate: true, pingInterval: 0 });
    const client = await deflateClient(url);
    const server = await next.ws;
    expect(server.extensions).toContain('permessage-deflate');

    server.subscribe('t');
    const sends = [server.send(`A${big}`)];
    expect(wss.publish('t', 'P')).toBe(1);
    sends.push(server.send(`B${big}`, { compress: false }), server.send(`C${big}`));

    const got: string[] = [];
    for (let i = 0; i < 4; i++) {
      const msg = await within(client.receive(), 5000, `message ${i}`);
      expect(msg).not.toBeNull();
      got.push(tag(msg!));
    }
    // Before the fix the published frame waited until the queue was idle: A, B, C, P.
    expect(got).toEqual(['A', 'P', 'B', 'C']);
    await within(Promise.all(sends), 5000, 'the sends');
  });

  it('a close() right after publish() does not drop the published frame', async () => {
    const next = nextConnection();
    const { wss, url } = await startServer(res, next.handler, { perMessageDeflate: true, pingInterval: 0 });
    const client = await deflateClient(url);
    const server = await next.ws;

    server.subscribe('t');
    server.send(`A${big}`).catch(noop);
    expect(wss.publish('t', 'P')).toBe(1);
    const serverClosed = server.close(1000, 'bye');

    const got: string[] = [];
    for (;;) {
      const msg = await within(client.receive(), 5000, 'the next message or the end');
      if (msg === null) break;
      got.push(tag(msg));
    }
    // Before the fix the held frame was discarded once the queued Close went out: only A.
    expect(got).toEqual(['A', 'P']);
    const info = await within(client.closed, 5000, 'the client to close');
    expect(info.code).toBe(1000);
    expect(info.reason).toBe('bye');
    expect((await within(serverClosed, 5000, 'the server side to close')).wasClean).toBe(true);
  });

  it('is not starved by a busy queue, and counts in bufferedAmount while queued', async () => {
    const TOTAL = 40;
    const PUBLISH_AFTER = 5; // odd: the publish falls between two sends of the same turn
    const PUBLISHED = 'published';
    const FRAME_LENGTH = 2 + Buffer.byteLength(PUBLISHED); // unmasked, 7-bit length

    const next = nextConnection();
    const { wss, url } = await startServer(res, next.handler, {
      perMessageDeflate: true,
      pingInterval: 0,
      maxMessageSize: 16 * MiB,
    });
    const client = await deflateClient(url);
    const received: Message[] = [];
    client.on('message', (msg: Message) => received.push(msg));
    const server = await next.ws;
    server.subscribe('t');

    // Random chunks (slow to deflate), sent by a producer that keeps the queue busy.
    const chunk = randomBytes(32 * KiB);
    let issued = 0;
    let published: number | undefined;
    let bufferedDelta: number | undefined;
    await within(
      new Promise<void>((resolve) => {
        const produce = () => {
          if (server.readyState !== 1) return resolve();
          if (server.bufferedAmount < 512 * KiB) {
            for (let j = 0; j < 2 && issued < TOTAL; j++) {
              server.send(chunk).catch(noop);
              issued++;
              if (issued === PUBLISH_AFTER) {
                const before = server.bufferedAmount;
                published = wss.publish('t', PUBLISHED);
                bufferedDelta = server.bufferedAmount - before;
              }
            }
          }
          if (issued < TOTAL) setImmediate(produce);
          else resolve();
        };
        produce();
      }),
      10_000,
      'the producer',
    );
    expect(published).toBe(1);
    // Queued behind the sends, the frame is part of what is not yet written; before the fix
    // it was held aside and bufferedAmount did not change.
    expect(bufferedDelta).toBe(FRAME_LENGTH);

    await waitFor(() => received.length >= TOTAL + 1, 15_000, 'every message');
    const at = received.findIndex((m) => m.type === 'text');
    expect(received[at]?.text()).toBe(PUBLISHED);
    // Right after the sends accepted before it; before the fix, only once the queue was
    // idle: after every later send of the producer.
    expect(at).toBe(PUBLISH_AFTER);
    expect(received.filter((m) => m.type === 'binary')).toHaveLength(TOTAL);
  });
});

describe('pings while our Close waits behind queued sends', () => {
  it('are answered with a pong before the Close goes out', async () => {
    const COUNT = 100;
    let stateAtPing: number | undefined;
    const { url } = await startServer(
      res,
      (ws) => {
        ws.on('ping', () => {
          stateAtPing ??= ws.readyState;
        });
        // Random data deflates slowly: the Close stays queued behind these for a while.
        const chunk = randomBytes(128 * KiB);
        for (let i = 0; i < COUNT; i++) ws.send(chunk).catch(noop);
        ws.close(1000, 'done').catch(noop);
      },
      { perMessageDeflate: true, pingInterval: 0, maxMessageSize: 16 * MiB },
    );
    const client = await deflateClient(url);
    let messages = 0;
    client.on('message', () => {
      messages++;
    });
    // Before the fix the auto-pong stage answered only in readyState OPEN: never here.
    const messagesAtPong = await within(
      client.ping().then(
        () => messages,
        () => -1,
      ),
      15_000,
      'the pong',
    );
    const info = await within(client.closed, 15_000, 'the close');

    expect(stateAtPing).toBe(WebSocket.CLOSING); // close() had been called: the Close was queued
    expect(messagesAtPong).toBeGreaterThanOrEqual(0); // -1: the ping was never answered
    expect(messagesAtPong).toBeLessThan(COUNT); // the pong came ahead of queued data, and the Close
    expect(messages).toBe(COUNT);
    expect(info.code).toBe(1000);
  });
});

describe('timers left behind by a finished connection', () => {
  describe('on a fake clock', () => {
    useFakeClock();

    it('a connection terminated by onBackpressure inside its keepalive ping is dropped from the keepalive timer', async () => {
      const PING_INTERVAL = 170; // an interval no other test uses: its own shared timer
      let terminatedInCallback!: () => void;
      const terminated = new Promise<void>((resolve) => {
        terminatedInCallback = resolve;
      });
      const next = nextConnection((ws) => {
        // One big write is no slow consumer yet; the next ping, with all of it unread, is.
        ws.send(Buffer.alloc(32 * MiB)).catch(noop);
      });
      const { wss, port } = await startServer(res, next.handler, {
        pingInterval: PING_INTERVAL,
        connectionTimeout: 0,
        maxBufferedAmount: 1 * MiB,
        onBackpressure: (ws) => {
          terminatedInCallback();
          ws.terminate();
        },
      });
      const raw = await rawClient(res, port);
      raw.socket.pause(); // the peer stops reading after the 101
      const server = await next.ws;

      const { elapsed } = await advanceUntil(terminated, { step: 5, what: 'onBackpressure to run' });
      expect(elapsed).toBeGreaterThanOrEqual(PING_INTERVAL); // it ran in the keepalive ping
      expect(server.readyState).toBe(WebSocket.CLOSED);

      // The keepalive callback reads readyState of every connection it visits: a finished
      // connection it still holds would be visited again every interval. Before the fix it
      // was rescheduled by the callback that terminated it, forever.
      const proto = Object.getOwnPropertyDescriptor(WebSocket.prototype, 'readyState')!;
      let visits = 0;
      Object.defineProperty(server, 'readyState', {
        configurable: true,
        get(this: WebSocket) {
          visits++;
          return proto.get!.call(this);
        },
      });
      await vi.advanceTimersByTimeAsync(PING_INTERVAL * 5);
      expect(visits).toBe(0);

      // With everything closed, no timer is left: before the fix the shared keepalive timer
      // kept re-arming for the finished connection.
      raw.destroy();
      await within(stopServer(wss), 10_000, 'the server to close');
      expect(vi.getTimerCount()).toBe(0);
    });
  });

  it('the deferred-Close timer is cleared when the handler terminates on a message sent with the Close', async () => {
    const timers = watchTimers();
    const got: string[] = [];
    const next = nextConnection(async (ws) => {
      for await (const msg of ws) {
        got.push(msg.text());
        ws.terminate();
      }
    });
    const { wss, port } = await startServer(res, next.handler, {
      closeTimeout: 30_000,
      pingInterval: 0,
      connectionTimeout: 0,
    });
    const raw = await rawClient(res, port);
    const server = await next.ws;
    // The message and the Close in one write: the Close is deferred (one turn), and the
    // handler terminates in between.
    raw.sendAll([
      { opcode: Opcode.TEXT, payload: 'hi' },
      { opcode: Opcode.CLOSE, payload: closePayload(1000) },
    ]);
    const info = await within(server.closed, 5000, 'the server side to close');
    expect(got).toEqual(['hi']);
    expect(info.code).toBe(1000); // the deferred Close still counts as received

    raw.destroy();
    await within(stopServer(wss), 10_000, 'the server to close');
    // Before the fix the 30 s closeTimeout timer of the deferred Close stayed armed.
    await noTimersLeft(timers);
  });
});
