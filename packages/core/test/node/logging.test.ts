/**
 * The injected logger: what reaches it at each logLevel, handler errors at error level,
 * and silence when no logger is given.
 */
import { connect, type Logger, type LogLevel, Opcode, WebSocketServer } from '@wskit/core';
import { afterEach, describe, expect, it, type Mock, vi } from 'vitest';
import { Resources } from '../../../../test/support/clients.js';
import { advanceUntil, FAKED } from '../../../../test/support/clock.js';
import { closeCode, echo, rawClient, startServer, waitFor, within } from './raw.js';

const res = new Resources();
afterEach(() => {
  vi.useRealTimers(); // before the cleanups, which may wait on a timer
  vi.restoreAllMocks();
  return res.release();
});

type SpyLogger = Logger & { [K in keyof Logger]: Mock };

function spyLogger(): SpyLogger {
  return { debug: vi.fn(), info: vi.fn(), warn: vi.fn(), error: vi.fn() };
}

/** The message strings (second argument) of a spy's calls. */
const messages = (spy: Mock): string[] => spy.mock.calls.map((c) => String(c[1] ?? c[0]));

/** Resolves with the close code our client sees. */
function closeCodeOf(ws: { once(event: 'close', fn: (code: number) => void): unknown }): Promise<number> {
  return new Promise((resolve) => ws.once('close', resolve));
}

/**
 * A lifecycle that makes the server log at every level: an echo exchange and a normal
 * close (debug), an idle connection closed by connectionTimeout (info) and a handler
 * that throws (error).
 */
async function lifecycle(options: { logger?: Logger; logLevel?: LogLevel }): Promise<void> {
  // The idle close comes from the fake clock, not after 300 ms of waiting.
  vi.useFakeTimers({ toFake: [...FAKED] });
  const { url } = await startServer(
    res,
    (ws, req) => {
      if (req.path === '/boom') throw new Error('handler exploded');
      if (req.path !== '/idle') echo(ws);
    },
    { pingInterval: 0, connectionTimeout: 300, ...options },
  );
  const a = await connect(url, { pingInterval: 0 });
  await a.send('x');
  await within(a.receive(), 5000);
  await a.close();

  const idle = await connect(`${url}idle`, { pingInterval: 0, connectionTimeout: 0 });
  res.add(() => idle.terminate());
  expect((await advanceUntil(closeCodeOf(idle), { what: 'the idle timeout' })).value).toBe(1001);

  const boom = await connect(`${url}boom`, { pingInterval: 0 });
  res.add(() => boom.terminate());
  expect(await within(closeCodeOf(boom), 5000, 'the handler error close')).toBe(1011);
}

describe('injected logger', () => {
  it("logLevel 'debug': debug lines for connection open and close", async () => {
    const logger = spyLogger();
    const { url, wss } = await startServer(res, (ws) => echo(ws), {
      pingInterval: 0,
      logger,
      logLevel: 'debug',
    });
    const client = await connect(url, { pingInterval: 0 });
    await waitFor(() => messages(logger.debug).some((m) => /open/i.test(m)), 5000, 'an open line');
    const [server] = [...wss.clients];
    await client.close();
    await server!.closed;
    const debug = messages(logger.debug);
    expect(debug.some((m) => /connection open/i.test(m))).toBe(true);
    expect(debug.some((m) => /clos/i.test(m))).toBe(true);
    // The close line carries the close information.
    const closeLine = logger.debug.mock.calls.find((c) => /connection closed/i.test(String(c[1])));
    expect(closeLine?.[0]).toMatchObject({ code: 1000, wasClean: true });
  });

  it("logLevel 'debug' on the client: its connection logs too", async () => {
    const logger = spyLogger();
    const { url } = await startServer(res, (ws) => echo(ws), { pingInterval: 0 });
    const client = await connect(url, { pingInterval: 0, logger, logLevel: 'debug' });
    await client.close();
    expect(messages(logger.debug).some((m) => /clos/i.test(m))).toBe(true);
  });

  it("logLevel 'warn': no debug or info calls, but errors still arrive", async () => {
    const logger = spyLogger();
    await lifecycle({ logger, logLevel: 'warn' });
    expect(logger.debug).not.toHaveBeenCalled();
    expect(logger.info).not.toHaveBeenCalled();
    expect(logger.error).toHaveBeenCalled();
  });

  it("logLevel 'info' (the default with a logger): info yes, debug no", async () => {
    const logger = spyLogger();
    await lifecycle({ logger });
    expect(logger.debug).not.toHaveBeenCalled();
    expect(messages(logger.info).some((m) => /timeout/i.test(m))).toBe(true);
    expect(logger.error).toHaveBeenCalled();
  });

  it("logLevel 'silent': nothing at all", async () => {
    const logger = spyLogger();
    await lifecycle({ logger, logLevel: 'silent' });
    for (const spy of Object.values(logger)) expect(spy).not.toHaveBeenCalled();
  });

  it('a handler that throws is logged at error level with the error (and closes with 1011)', async () => {
    const logger = spyLogger();
    const boom = new Error('sync boom');
    const { url } = await startServer(
      res,
      () => {
        throw boom;
      },
      { pingInterval: 0, logger, logLevel: 'error' },
    );
    const client = await connect(url, { pingInterval: 0 });
    res.add(() => client.terminate());
    expect(await within(closeCodeOf(client), 5000)).toBe(1011);
    expect(logger.error).toHaveBeenCalled();
    const [obj] = logger.error.mock.calls[0]!;
    expect(obj).toMatchObject({ err: boom });
  });

  it('a handler that rejects is logged at error level too', async () => {
    const logger = spyLogger();
    const boom = new Error('async boom');
    const { url } = await startServer(
      res,
      async () => {
        await Promise.resolve();
        throw boom;
      },
      { pingInterval: 0, logger, logLevel: 'error' },
    );
    const client = await connect(url, { pingInterval: 0 });
    res.add(() => client.terminate());
    expect(await within(closeCodeOf(client), 5000)).toBe(1011);
    expect(logger.error.mock.calls.some((c) => (c[0] as { err?: unknown }).err === boom)).toBe(true);
  });

  it("a throwing 'message' listener is logged at error level", async () => {
    const logger = spyLogger();
    const { url } = await startServer(
      res,
      (ws) => {
        ws.on('message', () => {
          throw new Error('listener boom');
        });
      },
      { pingInterval: 0, logger, logLevel: 'error' },
    );
    const client = await connect(url, { pingInterval: 0 });
    res.add(() => client.terminate());
    const closed = closeCodeOf(client);
    await client.send('x');
    expect(await within(closed, 5000)).toBe(1011);
    expect(messages(logger.error).some((m) => /handler/i.test(m))).toBe(true);
  });

  it('a per-route logger receives the lines of its connections', async () => {
    const serverLogger = spyLogger();
    const routeLogger = spyLogger();
    const wss = new WebSocketServer({ pingInterval: 0, logger: serverLogger, logLevel: 'error' });
    wss.route(
      '/r',
      () => {
        throw new Error('route boom');
      },
      { logger: routeLogger, logLevel: 'error' },
    );
    const { port } = await wss.listen(0, '127.0.0.1');
    res.add(() => wss.close());
    const client = await connect(`ws://127.0.0.1:${port}/r`, { pingInterval: 0 });
    res.add(() => client.terminate());
    expect(await within(closeCodeOf(client), 5000)).toBe(1011);
    expect(routeLogger.error).toHaveBeenCalled();
    expect(serverLogger.error).not.toHaveBeenCalled();
  });
});

describe('without a logger', () => {
  it('prints nothing, whatever happens', async () => {
    const spies = (['log', 'info', 'warn', 'error', 'debug', 'trace'] as const).map((m) =>
      vi.spyOn(console, m).mockImplementation(() => {}),
    );
    const stdout = vi.spyOn(process.stdout, 'write');
    const stderr = vi.spyOn(process.stderr, 'write');
    // logLevel without a logger stays silent too.
    await lifecycle({ logLevel: 'debug' });
    // A protocol violation from a raw peer and a refused upgrade (404).
    const { port } = await startServer(res, (ws) => echo(ws), { pingInterval: 0 });
    const raw = await rawClient(res, port);
    raw.send({ opcode: 0xb });
    expect(closeCode(await raw.nextOf(Opcode.CLOSE))).toBe(1002);
    const wss = new WebSocketServer();
    wss.route('/only', () => {});
    const { port: port2 } = await wss.listen(0, '127.0.0.1');
    res.add(() => wss.close());
    await expect(connect(`ws://127.0.0.1:${port2}/other`)).rejects.toThrow(/404/);

    for (const spy of spies) expect(spy).not.toHaveBeenCalled();
    expect(stdout).not.toHaveBeenCalled();
    expect(stderr).not.toHaveBeenCalled();
  });
});
