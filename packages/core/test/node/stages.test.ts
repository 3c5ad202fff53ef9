/**
 * Frame stages (inbound/outbound interceptors, auto-pong and auto-ping among them), the
 * low-level frames() tap and sendFrame().
 */
import { connect, type Frame, Opcode, type Stage, type WebSocket } from '@wskit/core';
import { describe, expect, it, vi } from 'vitest';
import { resourcesPerTest } from '../../../../test/support/clients.js';
import { advanceUntil, useFakeClock } from '../../../../test/support/clock.js';
import { closePayload, echo, rawClient, startServer, waitFor, within } from './raw.js';
import { nextConnection } from './util.js';

const res = resourcesPerTest();

const text = (f: Frame) => f.payload.toString();

describe('built-in stages', () => {
  it('lists auto-pong and auto-ping when pingInterval > 0, on both sides', async () => {
    const next = nextConnection();
    const { url } = await startServer(res, next.handler, { pingInterval: 1000 });
    const client = await connect(url, { pingInterval: 1000 });
    res.add(() => client.terminate());
    const server = await next.ws;
    expect(server.stages.map((s) => s.name)).toEqual(['auto-pong', 'auto-ping']);
    expect(client.stages.map((s) => s.name)).toEqual(['auto-pong', 'auto-ping']);
  });

  it("one connection's use()/unuse() leaves the stages of its route's other connections alone", async () => {
    const connections: WebSocket[] = [];
    let bothOpen: () => void = () => {};
    const both = new Promise<void>((resolve) => {
      bothOpen = resolve;
    });
    const { url } = await startServer(
      res,
      (ws) => {
        connections.push(ws);
        if (connections.length === 2) bothOpen();
      },
      { pingInterval: 1000 },
    );
    for (let i = 0; i < 2; i++) {
      const client = await connect(url, { pingInterval: 0 });
      res.add(() => client.terminate());
    }
    await both;
    const [a, b] = connections as [WebSocket, WebSocket];
    const names = (ws: WebSocket) => ws.stages.map((s) => s.name);
    a.use({ name: 'tag', outbound: (f) => f });
    expect(a.unuse('auto-ping')).toBe(true);
    expect(names(a)).toEqual(['auto-pong', 'tag']);
    expect(names(b)).toEqual(['auto-pong', 'auto-ping']);
    expect(Object.isFrozen(b.stages)).toBe(true); // shared by the route's connections
  });

  it('has no auto-ping when pingInterval is 0', async () => {
    const next = nextConnection();
    const { url } = await startServer(res, next.handler, { pingInterval: 0 });
    const client = await connect(url, { pingInterval: 0 });
    res.add(() => client.terminate());
    expect((await next.ws).stages.map((s) => s.name)).toEqual(['auto-pong']);
    expect(client.stages.map((s) => s.name)).toEqual(['auto-pong']);
  });

  it('answers pings with pongs carrying the same payload', async () => {
    const { port } = await startServer(res, (ws) => echo(ws), { pingInterval: 0 });
    const raw = await rawClient(res, port);
    raw.sendAll([
      { opcode: Opcode.PING, payload: 'p1' },
      { opcode: Opcode.TEXT, payload: 'after' },
    ]);
    const first = await raw.next();
    expect(first.opcode).toBe(Opcode.PONG);
    expect(text(first)).toBe('p1');
    expect(text(await raw.next())).toBe('after');
  });

  it("unuse('auto-pong'): pings are no longer answered, 'ping' events still fire", async () => {
    const pings: string[] = [];
    let removed: boolean[] = [];
    const { port } = await startServer(
      res,
      (ws) => {
        removed = [ws.unuse('auto-pong'), ws.unuse('auto-pong')];
        ws.on('ping', (data: Buffer) => pings.push(data.toString()));
        echo(ws);
      },
      { pingInterval: 0 },
    );
    const raw = await rawClient(res, port);
    raw.sendAll([
      { opcode: Opcode.PING, payload: 'p1' },
      { opcode: Opcode.TEXT, payload: 'after' },
    ]);
    // Frames are handled in order: a pong would have come before this echo.
    const first = await raw.next();
    expect(first.opcode).toBe(Opcode.TEXT);
    expect(text(first)).toBe('after');
    expect(removed).toEqual([true, false]);
    expect(pings).toEqual(['p1']);
  });

  it('auto-ping sends pings and a pong updates rtt', async () => {
    const next = nextConnection();
    const { port } = await startServer(res, next.handler, { pingInterval: 30 });
    const raw = await rawClient(res, port);
    const server = await next.ws;
    const ping = await raw.nextOf(Opcode.PING);
    expect(server.rtt).toBeUndefined();
    raw.send({ opcode: Opcode.PONG, payload: ping.payload });
    await waitFor(() => server.rtt !== undefined, 5000, 'rtt');
    expect(server.rtt).toBeGreaterThanOrEqual(0);
  });

  it("dropIncomingPings: no pongs, but 'ping' events still fire", async () => {
    const pings: string[] = [];
    const { port } = await startServer(
      res,
      (ws) => {
        ws.on('ping', (data: Buffer) => pings.push(data.toString()));
        echo(ws);
      },
      { pingInterval: 0, dropIncomingPings: true },
    );
    const raw = await rawClient(res, port);
    raw.sendAll([
      { opcode: Opcode.PING, payload: 'p1' },
      { opcode: Opcode.PING, payload: 'p2' },
      { opcode: Opcode.TEXT, payload: 'after' },
    ]);
    const first = await raw.next();
    expect(first.opcode).toBe(Opcode.TEXT);
    expect(text(first)).toBe('after');
    expect(pings).toEqual(['p1', 'p2']);
  });

  it('dropIncomingPings: our client does not answer the server’s pings either', async () => {
    const next = nextConnection();
    const { url } = await startServer(res, next.handler, { pingInterval: 0 });
    const client = await connect(url, { pingInterval: 0, dropIncomingPings: true });
    res.add(() => client.terminate());
    const server = await next.ws;
    const pongs: Buffer[] = [];
    server.on('pong', (d: Buffer) => pongs.push(d));
    const pinged = new Promise<void>((resolve) => client.once('ping', () => resolve()));
    const rtt = server.ping('x');
    rtt.catch(() => {});
    await within(pinged, 5000, 'the client to see the ping');
    // A pong would be written before this message, so it would be read before it too.
    const after = new Promise((resolve) => server.once('message', resolve));
    await client.send('after the ping');
    await within(after, 5000, 'the message after the ping');
    expect(pongs).toEqual([]);
  });
});

describe('built-in stages on a fake clock', () => {
  useFakeClock();

  it("unuse('auto-ping') stops the background pings", async () => {
    const next = nextConnection((ws) => {
      ws.unuse('auto-ping');
    });
    const { port } = await startServer(res, next.handler, { pingInterval: 30 });
    const raw = await rawClient(res, port);
    await next.ws;
    await vi.advanceTimersByTimeAsync(300); // ten intervals
    // Our Ping is answered after anything the server sent before it.
    raw.send({ opcode: Opcode.PING, payload: 'mine' });
    expect(text(await raw.nextOf(Opcode.PONG))).toBe('mine');
    expect(raw.reader.frames.filter((f) => f.opcode === Opcode.PING)).toEqual([]);
  });

  it('auto-ping sends its first ping one interval (and at most a slot) after the handshake', async () => {
    const next = nextConnection();
    const { port } = await startServer(res, next.handler, { pingInterval: 160 });
    const raw = await rawClient(res, port);
    await next.ws;
    const { elapsed } = await advanceUntil(raw.nextOf(Opcode.PING, 10_000), { step: 5 });
    expect(elapsed).toBeGreaterThanOrEqual(160);
    expect(elapsed).toBeLessThanOrEqual(160 + 10 + 5);
  });

  it('dropIncomingPings: pongs from the peer still count as liveness', async () => {
    const next = nextConnection();
    const { port } = await startServer(res, next.handler, {
      pingInterval: 0,
      connectionTimeout: 250,
      dropIncomingPings: true,
    });
    const raw = await rawClient(res, port);
    const server = await next.ws;
    // A heartbeat Pong every 50 ms for 1 s (four connectionTimeouts), each one read by
    // the server before the clock moves on.
    for (let i = 0; i < 20; i++) {
      const seen = new Promise((resolve) => server.once('pong', resolve));
      raw.send({ opcode: Opcode.PONG, payload: 'hb' });
      await within(seen, 5000, `heartbeat ${i}`);
      await vi.advanceTimersByTimeAsync(50);
    }
    expect(server.readyState).toBe(1);
    expect(raw.reader.frames).toEqual([]);
    // Without the heartbeat the same connection is closed as idle (so it was what kept it open).
    const { value: close } = await advanceUntil(raw.nextOf(Opcode.CLOSE, 10_000));
    expect(close.payload.readUInt16BE(0)).toBe(1001);
  });
});

describe('custom stages', () => {
  const upper: Stage = {
    name: 'upper',
    inbound(frame) {
      if (frame.opcode !== Opcode.TEXT && frame.opcode !== Opcode.CONTINUATION) return frame;
      return { ...frame, payload: Buffer.from(frame.payload.toString('latin1').toUpperCase(), 'latin1') };
    },
  };

  it('an inbound stage that rewrites text payloads changes the received messages', async () => {
    const { url } = await startServer(
      res,
      (ws) => {
        ws.use(upper);
        echo(ws);
      },
      { pingInterval: 0 },
    );
    const client = await connect(url, { pingInterval: 0 });
    res.add(() => client.terminate());
    await client.send('hello');
    await client.send(Buffer.from('bin'), { binary: true });
    expect((await within(client.receive(), 5000))?.text()).toBe('HELLO');
    expect((await within(client.receive(), 5000))?.text()).toBe('bin');
  });

  it('an inbound stage returning null drops the frame', async () => {
    const seen: string[] = [];
    const { port } = await startServer(
      res,
      (ws) => {
        ws.use({
          name: 'filter',
          inbound: (frame) => (frame.opcode === Opcode.TEXT && text(frame).startsWith('drop') ? null : frame),
        });
        ws.use({
          name: 'after-filter',
          inbound: (frame) => {
            seen.push(text(frame));
            return frame;
          },
        });
        echo(ws);
      },
      { pingInterval: 0 },
    );
    const raw = await rawClient(res, port);
    raw.sendAll([
      { opcode: Opcode.TEXT, payload: 'one' },
      { opcode: Opcode.TEXT, payload: 'drop me' },
      { opcode: Opcode.TEXT, payload: 'two' },
    ]);
    expect(text(await raw.next())).toBe('one');
    expect(text(await raw.next())).toBe('two');
    // Nothing else comes before the answer to a later Ping.
    raw.send({ opcode: Opcode.PING, payload: 'end' });
    expect((await raw.next()).opcode).toBe(Opcode.PONG);
    expect(raw.reader.pending()).toEqual([]);
    // Later stages don't see a dropped frame either (only the frames around it, and the Ping).
    expect(seen).toEqual(['one', 'two', 'end']);
  });

  it('a dropped ping is not answered', async () => {
    const { port } = await startServer(
      res,
      (ws) => {
        // Put the filter before auto-pong: remove auto-pong and add it back after the filter.
        const pong = ws.stages.find((s) => s.name === 'auto-pong')!;
        ws.unuse('auto-pong');
        ws.use({ name: 'no-pings', inbound: (f) => (f.opcode === Opcode.PING ? null : f) });
        ws.use(pong);
        echo(ws);
      },
      { pingInterval: 0 },
    );
    const raw = await rawClient(res, port);
    raw.sendAll([
      { opcode: Opcode.PING, payload: 'p' },
      { opcode: Opcode.TEXT, payload: 'after' },
    ]);
    const first = await raw.next();
    expect(first.opcode).toBe(Opcode.TEXT);
  });

  it('an outbound stage sees and can alter outgoing frames (stages run in reverse order)', async () => {
    const outgoing: Array<{ opcode: number; payload: string }> = [];
    const { port } = await startServer(
      res,
      (ws) => {
        ws.use({
          name: 'a',
          outbound(frame) {
            outgoing.push({ opcode: frame.opcode, payload: frame.payload.toString() });
            if (frame.opcode !== Opcode.TEXT) return frame;
            return { ...frame, payload: Buffer.concat([frame.payload, Buffer.from('+a')]) };
          },
        });
        ws.use({
          name: 'b',
          outbound(frame) {
            if (frame.opcode !== Opcode.TEXT) return frame;
            return { ...frame, payload: Buffer.concat([frame.payload, Buffer.from('+b')]) };
          },
        });
        ws.use({
          name: 'swallow',
          outbound: (frame) => (frame.opcode === Opcode.TEXT && text(frame) === 'secret' ? null : frame),
        });
        echo(ws);
      },
      { pingInterval: 0 },
    );
    const raw = await rawClient(res, port);
    raw.sendAll([
      { opcode: Opcode.TEXT, payload: 'secret' },
      { opcode: Opcode.TEXT, payload: 'hi' },
      { opcode: Opcode.PING, payload: 'p' },
    ]);
    const first = await raw.next();
    expect(first.opcode).toBe(Opcode.TEXT);
    expect(text(first)).toBe('hi+b+a');
    const second = await raw.next();
    expect(second.opcode).toBe(Opcode.PONG);
    expect(text(second)).toBe('p');
    // 'a' (added first, so outermost on the way out) saw 'b''s output and the pong.
    expect(outgoing).toEqual([
      { opcode: Opcode.TEXT, payload: 'hi+b' },
      { opcode: Opcode.PONG, payload: 'p' },
    ]);
  });

  it('calls attach when added and detach when removed or when the connection closes', async () => {
    const attach = vi.fn();
    const detach = vi.fn();
    const next = nextConnection();
    const { url } = await startServer(res, next.handler, { pingInterval: 0 });
    const client = await connect(url, { pingInterval: 0 });
    res.add(() => client.terminate());
    const server = await next.ws;
    server.use({ name: 'one', attach, detach });
    expect(attach).toHaveBeenCalledWith(server);
    expect(server.unuse('one')).toBe(true);
    expect(detach).toHaveBeenCalledTimes(1);
    server.use({ name: 'two', attach, detach });
    await client.close();
    await server.closed;
    expect(attach).toHaveBeenCalledTimes(2);
    expect(detach).toHaveBeenCalledTimes(2);
  });

  it('use() with the name of an existing stage replaces it', async () => {
    const next = nextConnection();
    const { url } = await startServer(res, next.handler, { pingInterval: 0 });
    const client = await connect(url, { pingInterval: 0 });
    res.add(() => client.terminate());
    const server = await next.ws;
    server.use({ name: 'x', inbound: (f) => f });
    const replacement: Stage = { name: 'x', inbound: (f) => f };
    server.use(replacement);
    expect(server.stages.filter((s) => s.name === 'x')).toEqual([replacement]);
  });
});

describe('frames() and sendFrame()', () => {
  it('frames() yields every inbound frame in order, control frames and fragments included', async () => {
    const collected: Frame[] = [];
    const messages: string[] = [];
    let done!: () => void;
    const finished = new Promise<void>((resolve) => {
      done = resolve;
    });
    const { port } = await startServer(
      res,
      (ws) => {
        ws.on('message', (m) => messages.push(m.text()));
        (async () => {
          for await (const f of ws.frames()) collected.push(f);
          done();
        })();
      },
      { pingInterval: 0 },
    );
    const raw = await rawClient(res, port);
    raw.sendAll([
      { opcode: Opcode.TEXT, fin: false, payload: 'he' },
      { opcode: Opcode.PING, payload: 'p' },
      { opcode: Opcode.CONTINUATION, fin: false, payload: 'll' },
      { opcode: Opcode.PONG, payload: 'q' },
      { opcode: Opcode.CONTINUATION, fin: true, payload: 'o' },
      { opcode: Opcode.BINARY, payload: Buffer.from([1, 2]) },
      { opcode: Opcode.CLOSE, payload: closePayload(1000) },
    ]);
    await within(finished, 5000, 'frames() to end with the connection');
    expect(
      collected.map((f) => ({
        fin: f.fin,
        opcode: f.opcode,
        masked: f.masked,
        payload: f.payload.toString('hex'),
      })),
    ).toEqual([
      { fin: false, opcode: Opcode.TEXT, masked: true, payload: Buffer.from('he').toString('hex') },
      { fin: true, opcode: Opcode.PING, masked: true, payload: Buffer.from('p').toString('hex') },
      { fin: false, opcode: Opcode.CONTINUATION, masked: true, payload: Buffer.from('ll').toString('hex') },
      { fin: true, opcode: Opcode.PONG, masked: true, payload: Buffer.from('q').toString('hex') },
      { fin: true, opcode: Opcode.CONTINUATION, masked: true, payload: Buffer.from('o').toString('hex') },
      { fin: true, opcode: Opcode.BINARY, masked: true, payload: '0102' },
      { fin: true, opcode: Opcode.CLOSE, masked: true, payload: closePayload(1000).toString('hex') },
    ]);
    // Tapping the frames doesn't take the messages away.
    expect(messages).toEqual(['hello', '\u0001\u0002']);
  });

  it('sendFrame() sends a hand-made fragmented message that the peer reassembles', async () => {
    const { url, port } = await startServer(
      res,
      async (ws) => {
        await ws.sendFrame({
          fin: false,
          rsv: 0,
          opcode: Opcode.TEXT,
          masked: false,
          payload: Buffer.from('Hel'),
        });
        await ws.sendFrame({
          fin: true,
          rsv: 0,
          opcode: Opcode.PING,
          masked: false,
          payload: Buffer.from('mid'),
        });
        await ws.sendFrame({ fin: false, rsv: 0, opcode: 0, masked: false, payload: Buffer.from('lo, ') });
        await ws.sendFrame({ fin: true, rsv: 0, opcode: 0, masked: false, payload: Buffer.from('world') });
      },
      { pingInterval: 0 },
    );
    // The exact frames on the wire:
    const raw = await rawClient(res, port);
    const wire = [await raw.next(), await raw.next(), await raw.next(), await raw.next()];
    expect(wire.map((f) => [f.fin, f.opcode, f.masked, text(f)])).toEqual([
      [false, Opcode.TEXT, false, 'Hel'],
      [true, Opcode.PING, false, 'mid'],
      [false, 0, false, 'lo, '],
      [true, 0, false, 'world'],
    ]);
    // And our client reassembles them into one message (answering the ping in between).
    const client = await connect(url, { pingInterval: 0 });
    res.add(() => client.terminate());
    const msg = await within(client.receive(), 5000);
    expect(msg?.type).toBe('text');
    expect(msg?.text()).toBe('Hello, world');
  });

  it('sendFrame() on the client masks the frame whatever `masked` says', async () => {
    const { url } = await startServer(res, (ws) => echo(ws), { pingInterval: 0 });
    const client = await connect(url, { pingInterval: 0 });
    res.add(() => client.terminate());
    await client.sendFrame({
      fin: false,
      rsv: 0,
      opcode: Opcode.BINARY,
      masked: false,
      payload: Buffer.from([1]),
    });
    await client.sendFrame({ fin: true, rsv: 0, opcode: 0, masked: false, payload: Buffer.from([2, 3]) });
    const msg = await within(client.receive(), 5000);
    expect(msg?.type).toBe('binary');
    expect([...msg!.data]).toEqual([1, 2, 3]);
  });
});
