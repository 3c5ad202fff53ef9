/**
 * Bad input over a real TCP connection: every class of protocol violation a peer can
 * commit, sent byte-exact from a raw socket. The other side must answer with a Close
 * carrying the RFC 6455 code (§7.4.1: 1002 protocol error, 1007 invalid payload data,
 * 1009 too big), close the TCP connection, and stay healthy for everyone else.
 */
import { connect, Opcode, type WebSocket, WebSocketError } from '@wskit/core';
import { describe, expect, it } from 'vitest';
import { resourcesPerTest } from '../../../../test/support/clients.js';
import {
  assertEchoWorks,
  closeCode,
  closePayload,
  echo,
  type FrameSpec,
  frameBytes,
  RawServer,
  rawClient,
  startServer,
  waitFor,
  within,
} from './raw.js';
import { nextConnection } from './util.js';

const res = resourcesPerTest();

const MAX_FRAME = 4096;
const MAX_MESSAGE = 8192;

/** 64-bit extended length header of a masked binary frame, without payload. */
function header64(hi: number, lo: number): Buffer {
  const b = Buffer.alloc(14);
  b[0] = 0x82;
  b[1] = 0x80 | 127;
  b.writeUInt32BE(hi >>> 0, 2);
  b.writeUInt32BE(lo >>> 0, 6);
  b.writeUInt32BE(0x01020304, 10); // masking key
  return b;
}

/** The header and the first `partial` payload bytes of a masked frame of `length` bytes. */
function truncatedFrame(spec: FrameSpec, length: number, partial: Buffer): Buffer {
  const full = Buffer.alloc(length, 0x61);
  partial.copy(full, 0);
  const bytes = frameBytes({ ...spec, payload: full }, true);
  return bytes.subarray(0, bytes.length - length + partial.length);
}

/** Client frames (masked), back to back. */
const maskedFrames = (...specs: FrameSpec[]): Buffer => Buffer.concat(specs.map((s) => frameBytes(s, true)));

const BAD_UTF8 = Buffer.from([0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xed, 0xa0, 0x80, 0x65]); // surrogate

interface Violation {
  name: string;
  bytes: () => Buffer;
  code: number;
}

const violations: Violation[] = [
  {
    name: 'RSV1 without an extension',
    bytes: () => frameBytes({ opcode: 1, rsv: 4, payload: 'x' }, true),
    code: 1002,
  },
  { name: 'RSV2', bytes: () => frameBytes({ opcode: 2, rsv: 2, payload: 'x' }, true), code: 1002 },
  { name: 'RSV3', bytes: () => frameBytes({ opcode: 1, rsv: 1, payload: 'x' }, true), code: 1002 },
  { name: 'reserved data opcode 3', bytes: () => frameBytes({ opcode: 3, payload: 'x' }, true), code: 1002 },
  { name: 'reserved control opcode 0xB', bytes: () => frameBytes({ opcode: 0xb }, true), code: 1002 },
  {
    name: 'fragmented ping',
    bytes: () => frameBytes({ opcode: Opcode.PING, fin: false, payload: 'p' }, true),
    code: 1002,
  },
  {
    name: 'ping with a 126-byte payload',
    bytes: () => frameBytes({ opcode: Opcode.PING, payload: Buffer.alloc(126, 1) }, true),
    code: 1002,
  },
  {
    name: 'continuation without a message to continue',
    bytes: () => frameBytes({ opcode: 0, payload: 'x' }, true),
    code: 1002,
  },
  {
    name: 'TEXT inside a fragmented message',
    bytes: () => maskedFrames({ opcode: 1, fin: false, payload: 'a' }, { opcode: 1, payload: 'b' }),
    code: 1002,
  },
  {
    name: 'BINARY inside a fragmented text message',
    bytes: () => maskedFrames({ opcode: 1, fin: false, payload: 'a' }, { opcode: 2, payload: 'b' }),
    code: 1002,
  },
  {
    name: 'unmasked client frame',
    bytes: () => frameBytes({ opcode: 1, payload: 'hi', masked: false }, true),
    code: 1002,
  },
  { name: '64-bit length with the top bit set', bytes: () => header64(0x80000000, 5), code: 1002 },
  {
    // Only the header is sent: the answer must not wait for the payload.
    name: 'frame longer than maxFrameSize (header only)',
    bytes: () => header64(0, MAX_FRAME + 1),
    code: 1009,
  },
  {
    name: 'message over maxMessageSize across fragments',
    bytes: () =>
      maskedFrames(
        { opcode: 2, fin: false, payload: Buffer.alloc(MAX_FRAME, 1) },
        { opcode: 0, fin: false, payload: Buffer.alloc(MAX_FRAME, 2) },
        { opcode: 0, fin: true, payload: Buffer.alloc(1, 3) },
      ),
    code: 1009,
  },
  {
    name: 'invalid UTF-8 in a text frame',
    bytes: () => frameBytes({ opcode: 1, payload: BAD_UTF8 }, true),
    code: 1007,
  },
  {
    name: 'overlong UTF-8 encoding',
    bytes: () => frameBytes({ opcode: 1, payload: Buffer.from([0xc0, 0xaf]) }, true),
    code: 1007,
  },
  {
    name: 'text frame ending inside a UTF-8 sequence',
    bytes: () => frameBytes({ opcode: 1, payload: Buffer.from([0x61, 0xe2, 0x82]) }, true),
    code: 1007,
  },
  {
    // No final fragment is ever sent: the server must fail fast on the first one.
    name: 'invalid UTF-8 in the first fragment of a text message',
    bytes: () => frameBytes({ opcode: 1, fin: false, payload: Buffer.from([0x61, 0xff, 0x62]) }, true),
    code: 1007,
  },
  {
    name: 'fragmented text message ending inside a UTF-8 sequence',
    bytes: () =>
      maskedFrames(
        { opcode: 1, fin: false, payload: Buffer.from([0x61, 0xe2, 0x82]) },
        { opcode: 0, fin: true, payload: '' },
      ),
    code: 1007,
  },
  {
    // A single frame whose first bytes are already invalid; the rest never comes.
    name: 'invalid UTF-8 at the start of a text frame whose payload is still arriving',
    bytes: () => truncatedFrame({ opcode: 1 }, 2000, Buffer.from([0x61, 0x62, 0xff])),
    code: 1007,
  },
  {
    name: 'invalid UTF-8 in a close reason',
    bytes: () =>
      frameBytes({ opcode: Opcode.CLOSE, payload: closePayload(1000, Buffer.from([0x6f, 0xff])) }, true),
    code: 1007,
  },
  {
    name: 'close payload of 1 byte',
    bytes: () => frameBytes({ opcode: Opcode.CLOSE, payload: Buffer.from([0x03]) }, true),
    code: 1002,
  },
  ...[0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535].map(
    (code): Violation => ({
      name: `close code ${code}`,
      bytes: () => frameBytes({ opcode: Opcode.CLOSE, payload: closePayload(code) }, true),
      code: 1002,
    }),
  ),
];

describe('server: protocol violations from a client', () => {
  for (const v of violations) {
    it(`answers "${v.name}" with ${v.code}, closes the TCP connection and keeps serving`, async () => {
      const closes: Array<{ code: number; wasClean: boolean }> = [];
      const { url, port } = await startServer(
        res,
        (ws) => {
          echo(ws);
          ws.closed.then((info) => closes.push(info));
        },
        { pingInterval: 0, maxFrameSize: MAX_FRAME, maxMessageSize: MAX_MESSAGE },
      );
      const raw = await rawClient(res, port);
      raw.write(v.bytes());
      const frame = await raw.next(5000);
      expect(frame.opcode).toBe(Opcode.CLOSE);
      expect(closeCode(frame)).toBe(v.code);
      expect(raw.reader.pending()).toEqual([]);
      await within(raw.ended, 5000, 'the server to close the TCP connection');
      // The next, well-behaved client is served as usual.
      await assertEchoWorks(url);
      // The failed connection is gone from the server, and it was not a clean close.
      await waitFor(() => closes.length === 1, 5000, 'the server connection to close');
      expect(closes[0]?.wasClean).toBe(false);
    });
  }

  it('accepts a text message whose UTF-8 characters are split across fragments', async () => {
    const { port } = await startServer(res, (ws) => echo(ws), { pingInterval: 0 });
    const raw = await rawClient(res, port);
    const euro = Buffer.from('€'); // e2 82 ac
    raw.sendAll([
      { opcode: 1, fin: false, payload: Buffer.concat([Buffer.from('a'), euro.subarray(0, 1)]) },
      { opcode: 0, fin: false, payload: euro.subarray(1, 2) },
      { opcode: 0, fin: true, payload: Buffer.concat([euro.subarray(2), Buffer.from('b')]) },
    ]);
    const frame = await raw.next();
    expect(frame.opcode).toBe(Opcode.TEXT);
    expect(frame.payload.toString()).toBe('a€b');
  });
});

describe('server: closing handshake from a client', () => {
  for (const code of [1000, 1001, 3000, 4999]) {
    it(`echoes the valid close code ${code} and closes cleanly`, async () => {
      const next = nextConnection();
      const { port } = await startServer(res, next.handler, { pingInterval: 0 });
      const raw = await rawClient(res, port);
      const server = await next.ws;
      raw.send({ opcode: Opcode.CLOSE, payload: closePayload(code, 'done') });
      const frame = await raw.next();
      expect(frame.opcode).toBe(Opcode.CLOSE);
      expect(closeCode(frame)).toBe(code);
      // RFC 6455 §7.1.1: the server closes the TCP connection first.
      await within(raw.ended, 5000, 'the server to close the TCP connection');
      expect(await within(server.closed, 5000)).toEqual({ code, reason: 'done', wasClean: true });
    });
  }

  it('answers a Close without payload with an empty Close (code 1005 locally)', async () => {
    const next = nextConnection();
    const { port } = await startServer(res, next.handler, { pingInterval: 0 });
    const raw = await rawClient(res, port);
    const server = await next.ws;
    raw.send({ opcode: Opcode.CLOSE });
    const frame = await raw.next();
    expect(frame.opcode).toBe(Opcode.CLOSE);
    expect(frame.payload.length).toBe(0);
    await within(raw.ended, 5000);
    expect(await server.closed).toEqual({ code: 1005, reason: '', wasClean: true });
  });

  it("ignores data that follows the peer's Close", async () => {
    const received: string[] = [];
    const next = nextConnection((ws) => {
      ws.on('message', (m) => received.push(m.text()));
    });
    const { port } = await startServer(res, next.handler, { pingInterval: 0 });
    const raw = await rawClient(res, port);
    raw.write(
      Buffer.concat([
        frameBytes({ opcode: 1, payload: 'before' }, true),
        frameBytes({ opcode: Opcode.CLOSE, payload: closePayload(1000) }, true),
        frameBytes({ opcode: 1, payload: 'after' }, true),
        frameBytes({ opcode: 3, payload: 'not even checked' }, true),
        Buffer.from([0xff, 0xff, 0xff]),
      ]),
    );
    const frame = await raw.next();
    expect(frame.opcode).toBe(Opcode.CLOSE);
    expect(closeCode(frame)).toBe(1000); // not 1002: the garbage was never parsed
    await within(raw.ended, 5000);
    await within((await next.ws).closed, 5000, 'the server connection to close');
    expect(received).toEqual(['before']);
    expect(raw.reader.pending()).toEqual([]);
  });
});

describe('propagateCommonErrors', () => {
  it('true: the protocol error reaches an error listener as a WebSocketError with .code', async () => {
    const errors: unknown[] = [];
    const { port } = await startServer(
      res,
      (ws) => {
        ws.on('error', (err) => errors.push(err));
      },
      { pingInterval: 0, propagateCommonErrors: true },
    );
    const raw = await rawClient(res, port);
    raw.send({ opcode: 0xb });
    expect(closeCode(await raw.next())).toBe(1002);
    await within(raw.ended, 5000);
    expect(errors.length).toBeGreaterThanOrEqual(1);
    const err = errors[0];
    expect(err).toBeInstanceOf(WebSocketError);
    expect((err as WebSocketError).code).toBe(1002);
    expect((err as WebSocketError).reason).toBe('protocol-error');
  });

  it('true: reports 1007 for invalid UTF-8', async () => {
    const errors: WebSocketError[] = [];
    const { port } = await startServer(
      res,
      (ws) => {
        ws.on('error', (err: WebSocketError) => errors.push(err));
      },
      { pingInterval: 0, propagateCommonErrors: true },
    );
    const raw = await rawClient(res, port);
    raw.send({ opcode: 1, payload: BAD_UTF8 });
    expect(closeCode(await raw.next())).toBe(1007);
    await within(raw.ended, 5000);
    expect(errors[0]?.code).toBe(1007);
  });

  it('false (default): an error listener hears nothing of the peer’s violation', async () => {
    const errors: unknown[] = [];
    let server: WebSocket | undefined;
    const { port } = await startServer(
      res,
      (ws) => {
        server = ws;
        ws.on('error', (err) => errors.push(err));
      },
      { pingInterval: 0 },
    );
    const raw = await rawClient(res, port);
    raw.send({ opcode: 0xb });
    expect(closeCode(await raw.next())).toBe(1002);
    await within(server!.closed, 5000);
    expect(errors).toEqual([]);
  });

  it('true without an error listener: nothing throws and the server keeps serving', async () => {
    const { url, port } = await startServer(res, (ws) => echo(ws), {
      pingInterval: 0,
      propagateCommonErrors: true,
    });
    for (const bytes of [
      frameBytes({ opcode: 0xb }, true),
      frameBytes({ opcode: 1, payload: BAD_UTF8 }, true),
    ]) {
      const raw = await rawClient(res, port);
      raw.write(bytes);
      const frame = await raw.next();
      expect(frame.opcode).toBe(Opcode.CLOSE);
      await within(raw.ended, 5000);
    }
    await assertEchoWorks(url);
  });
});

describe('client: protocol violations from a server', () => {
  async function setup(options: Parameters<typeof connect>[1] = {}) {
    const fake = new RawServer();
    const port = await fake.listen();
    res.add(() => fake.close());
    const client = await connect(`ws://127.0.0.1:${port}/`, { pingInterval: 0, ...options });
    res.add(() => client.terminate());
    const peer = await fake.nextPeer();
    return { client, peer };
  }

  it('answers a masked frame from the server with Close 1002', async () => {
    const { client, peer } = await setup();
    const closed = new Promise<number>((resolve) => client.once('close', (code: number) => resolve(code)));
    peer.send({ opcode: 1, payload: 'masked', masked: true });
    const frame = await peer.reader.next();
    expect(frame.opcode).toBe(Opcode.CLOSE);
    expect(frame.masked).toBe(true); // the client still masks its own frames
    expect(closeCode(frame)).toBe(1002);
    await within(peer.reader.ended, 5000, 'the client to close the TCP connection');
    await within(closed, 5000);
  });

  it('answers invalid UTF-8 from the server with Close 1007', async () => {
    const { client, peer } = await setup();
    peer.send({ opcode: 1, payload: BAD_UTF8 });
    const frame = await peer.reader.next();
    expect(frame.opcode).toBe(Opcode.CLOSE);
    expect(closeCode(frame)).toBe(1007);
    expect(await within(client.receive(), 5000)).toBeNull();
  });

  it('answers a reserved opcode from the server with Close 1002 and reports it when asked to', async () => {
    const { client, peer } = await setup({ propagateCommonErrors: true });
    const error = new Promise<WebSocketError>((resolve) => client.once('error', resolve));
    peer.send({ opcode: 3, payload: 'x' });
    const frame = await peer.reader.next();
    expect(closeCode(frame)).toBe(1002);
    const err = await within(error, 5000);
    expect(err).toBeInstanceOf(WebSocketError);
    expect(err.code).toBe(1002);
  });

  it('answers a frame over its default maxFrameSize (1 MiB) with 1009 from the header alone', async () => {
    const { peer } = await setup();
    const head = Buffer.alloc(10);
    head[0] = 0x82;
    head[1] = 127;
    head.writeUInt32BE(0, 2);
    head.writeUInt32BE(1024 * 1024 + 1, 6);
    peer.socket.write(head);
    const frame = await peer.reader.next();
    expect(frame.opcode).toBe(Opcode.CLOSE);
    expect(closeCode(frame)).toBe(1009);
  });

  it('delivers the messages that came before the violation', async () => {
    const { client, peer } = await setup();
    peer.socket.write(
      Buffer.concat([frameBytes({ opcode: 1, payload: 'first' }, false), frameBytes({ opcode: 0xb }, false)]),
    );
    expect((await within(client.receive(), 5000))?.text()).toBe('first');
    // Done with it, the consumer asks for more: nothing more comes, and our Close goes out.
    expect(await within(client.receive(), 5000)).toBeNull();
    expect(closeCode(await peer.reader.next())).toBe(1002);
  });
});
