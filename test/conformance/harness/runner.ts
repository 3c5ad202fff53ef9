/**
 * Runs one case in one direction: sets up our implementation (an echo WebSocketServer, or
 * connect() echoing back), does the opening handshake by hand on the peer's side, runs the
 * case, ends it, and grades it.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  connect as h2Connect,
  createServer as h2CreateServer,
  type IncomingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2';
import { connect as netConnect, createServer as netCreateServer, type Socket } from 'node:net';
import { type CloseInfo, connect, type WebSocket, WebSocketServer } from '@wskit/core';
import { describeExpectation, judge } from './judge.js';
import { Peer } from './peer.js';
import {
  normalizeExtensions,
  type ParsedExtension,
  PeerDeflate,
  parseExtensionHeader,
  peerDeflateConfig,
  responseProblems,
} from './pmd.js';
import type { Case, CaseResult, Direction, Transport } from './types.js';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const MiB = 1024 * 1024;
export const DEFAULT_LIMIT = 16 * MiB;
const DEFAULT_TIMEOUT = 5000;

const acceptFor = (key: string) =>
  createHash('sha1')
    .update(key + GUID)
    .digest('base64');

interface Head {
  startLine: string;
  headers: Map<string, string>;
  rest: Buffer;
}

/** Reads an HTTP head off a socket (and pauses it, so no byte after the head is lost). */
function readHead(socket: Socket, timeoutMs: number): Promise<Head> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => done(new Error('timed out waiting for the HTTP head')), timeoutMs);
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.pause();
      const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
      const headers = new Map<string, string>();
      for (const line of lines.slice(1)) {
        const i = line.indexOf(':');
        if (i < 0) continue;
        const name = line.slice(0, i).trim().toLowerCase();
        const value = line.slice(i + 1).trim();
        headers.set(name, headers.has(name) ? `${headers.get(name)}, ${value}` : value);
      }
      done(undefined, { startLine: lines[0] ?? '', headers, rest: buf.subarray(end + 4) });
    };
    const onEnd = () => done(new Error('connection closed before the HTTP head was complete'));
    const done = (err: Error | undefined, head?: Head) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onEnd);
      if (err) reject(err);
      else resolve(head!);
    };
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('error', onEnd);
  });
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    }),
  ]);
}

function implOptions(c: Case) {
  const o = c.options ?? {};
  return {
    pingInterval: 0,
    connectionTimeout: 0,
    closeTimeout: o.closeTimeout ?? 2000,
    maxFrameSize: o.maxFrameSize ?? DEFAULT_LIMIT,
    maxMessageSize: o.maxMessageSize ?? DEFAULT_LIMIT,
    // Family 9 sends 4 MiB in 64-byte fragments: 65536 frames.
    maxFragments: o.maxFragments ?? 1 << 20,
    maxBufferedAmount: o.maxBufferedAmount ?? 4 * DEFAULT_LIMIT,
  };
}

interface Run {
  peer: Peer | undefined;
  implInfo: CloseInfo | undefined;
  notes: string[];
  /** Problems found by the harness itself (graded FAILED or UNIMPLEMENTED). */
  failures: string[];
  unimplemented: string[];
}

/** Direction 'server': our WebSocketServer with an echo route, a raw TCP fuzzing client. */
async function runAgainstServer(c: Case): Promise<Run> {
  const o = c.options ?? {};
  const timeout = o.timeout ?? DEFAULT_TIMEOUT;
  const run: Run = { peer: undefined, implInfo: undefined, notes: [], failures: [], unimplemented: [] };
  let implWs: WebSocket | undefined;
  const wss = new WebSocketServer({
    ...implOptions(c),
    perMessageDeflate: o.deflate ? o.deflate.server : false,
  });
  wss.route('/echo', async (ws) => {
    implWs = ws;
    for await (const m of ws) await ws.send(m.data, { binary: m.type === 'binary' });
  });
  const { port } = await wss.listen(0, '127.0.0.1');
  let socket: Socket | undefined;
  try {
    socket = netConnect({ port, host: '127.0.0.1', allowHalfOpen: true });
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      socket!.once('connect', resolve);
      socket!.once('error', reject);
    });
    const key = randomBytes(16).toString('base64');
    const lines = [
      'GET /echo HTTP/1.1',
      `Host: 127.0.0.1:${port}`,
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Key: ${key}`,
      'Sec-WebSocket-Version: 13',
    ];
    if (o.deflate) lines.push(`Sec-WebSocket-Extensions: ${o.deflate.offer}`);
    socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    const head = await readHead(socket, timeout);
    if (!/^HTTP\/1\.1 101 /.test(head.startLine)) throw new Error(`handshake answered ${head.startLine}`);
    if (head.headers.get('sec-websocket-accept') !== acceptFor(key))
      throw new Error('wrong Sec-WebSocket-Accept');
    const answer = head.headers.get('sec-websocket-extensions');
    const deflate = serverAnswerDeflate(c, answer, run);
    const peer = new Peer({
      socket,
      direction: 'server',
      head: head.rest,
      ...(deflate ? { deflate } : {}),
      negotiated: answer ?? '',
      silent: o.silentPeer ?? false,
    });
    run.peer = peer;
    await runCase(c, peer, run);
    if (implWs !== undefined) {
      run.implInfo = await withTimeout(
        implWs.closed,
        timeout + (o.closeTimeout ?? 2000),
        'server-side close',
      ).catch((err: Error) => {
        run.failures.push(err.message);
        return undefined;
      });
    }
  } finally {
    socket?.destroy();
    await withTimeout(wss.close(), 10_000, 'wss.close()').catch((err: Error) =>
      run.failures.push(err.message),
    );
  }
  return run;
}

/** Server direction: checks our server's extension answer; the peer's codec if one was agreed. */
function serverAnswerDeflate(c: Case, answer: string | undefined, run: Run): PeerDeflate | undefined {
  const o = c.options ?? {};
  let deflate: PeerDeflate | undefined;
  if (o.deflate) {
    const offers = parseExtensionHeader(o.deflate.offer);
    const response = parseExtensionHeader(answer);
    if (response.length === 0) {
      if (o.deflate.expectDecline || o.deflate.mayDecline) run.notes.push('the offer was declined');
      else run.unimplemented.push(`the server declined "${o.deflate.offer}"`);
    } else if (o.deflate.expectDecline) {
      run.failures.push(`the server accepted "${answer}" for an offer it must decline`);
    } else {
      const problems = checkResponse(response, offers);
      if (problems.problems.length > 0)
        run.failures.push(`invalid response "${answer}": ${problems.problems.join('; ')}`);
      if (problems.offer)
        deflate = new PeerDeflate(peerDeflateConfig(response[0]!, problems.offer, 'client'));
    }
  } else if (answer !== undefined) {
    run.failures.push(`extensions answered without an offer: ${answer}`);
  }
  return deflate;
}

/** The response must be one valid acceptance of one of the offers (RFC 7692 §7.1). */
function checkResponse(
  response: ParsedExtension[],
  offers: ParsedExtension[],
): { problems: string[]; offer: ParsedExtension | undefined } {
  if (response.length !== 1) return { problems: ['more than one extension accepted'], offer: undefined };
  let best: string[] | undefined;
  for (const offer of offers) {
    const p = responseProblems(response[0]!, offer);
    if (p.length === 0) return { problems: [], offer };
    best ??= p;
  }
  return { problems: best ?? ['no offer matches'], offer: offers[0] };
}

/** Direction 'client': a raw TCP fuzzing server, our connect() echoing every message. */
async function runAgainstClient(c: Case): Promise<Run> {
  const o = c.options ?? {};
  const timeout = o.timeout ?? DEFAULT_TIMEOUT;
  const run: Run = { peer: undefined, implInfo: undefined, notes: [], failures: [], unimplemented: [] };
  const sockets = new Set<Socket>();
  const server = netCreateServer({ allowHalfOpen: true });
  let peerReady!: (p: Peer) => void;
  let peerFailed!: (e: Error) => void;
  const peerPromise = new Promise<Peer>((resolve, reject) => {
    peerReady = resolve;
    peerFailed = reject;
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('error', () => {});
    readHead(socket, timeout).then((head) => {
      const problems: string[] = [];
      const h = head.headers;
      if (!/^GET \S+ HTTP\/1\.1$/.test(head.startLine)) problems.push(`request line "${head.startLine}"`);
      if (h.get('upgrade')?.toLowerCase() !== 'websocket') problems.push('Upgrade header');
      if (!/\bupgrade\b/i.test(h.get('connection') ?? '')) problems.push('Connection header');
      if (h.get('sec-websocket-version') !== '13') problems.push('Sec-WebSocket-Version');
      const key = h.get('sec-websocket-key') ?? '';
      if (Buffer.from(key, 'base64').length !== 16) problems.push('Sec-WebSocket-Key');
      for (const p of problems) run.failures.push(`bad client handshake: ${p}`);
      const { answer, deflate } = clientOfferDeflate(c, h.get('sec-websocket-extensions'), run);
      const lines = [
        'HTTP/1.1 101 Switching Protocols',
        'Upgrade: websocket',
        'Connection: Upgrade',
        `Sec-WebSocket-Accept: ${acceptFor(key)}`,
      ];
      if (answer !== '') lines.push(`Sec-WebSocket-Extensions: ${answer}`);
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
      peerReady(
        new Peer({
          socket,
          direction: 'client',
          head: head.rest,
          ...(deflate ? { deflate } : {}),
          negotiated: answer,
          silent: o.silentPeer ?? false,
          serverKeepsTcpOpen: o.serverKeepsTcpOpen ?? false,
        }),
      );
    }, peerFailed);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  try {
    await driveOurClient(c, run, port, peerPromise, {});
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  return run;
}

/** Client direction: checks our client's extension offer; the answer and the peer's codec. */
function clientOfferDeflate(
  c: Case,
  offer: string | undefined,
  run: Run,
): { answer: string; deflate: PeerDeflate | undefined } {
  const o = c.options ?? {};
  let deflate: PeerDeflate | undefined;
  let answer = '';
  if (o.deflate) {
    if (normalizeExtensions(offer) !== normalizeExtensions(o.deflate.offer)) {
      run.failures.push(`our client offered "${offer ?? ''}", expected "${o.deflate.offer}"`);
    }
    answer = o.deflate.response;
    const response = parseExtensionHeader(answer);
    const offers = parseExtensionHeader(offer);
    if (response.length === 1 && offers.length > 0) {
      const chosen = offers.find((of) => responseProblems(response[0]!, of).length === 0) ?? offers[0]!;
      deflate = new PeerDeflate(peerDeflateConfig(response[0]!, chosen, 'server'));
    }
  } else if (offer !== undefined) {
    run.failures.push(`our client offered extensions without being asked: ${offer}`);
  }
  return { answer, deflate };
}

/**
 * HTTP/2 sessions of the peer: windows large enough that flow control (tested elsewhere)
 * does not slow family 9's 16 MiB messages to a crawl, and room for them in memory.
 */
const H2_SETTINGS = { initialWindowSize: 8 * MiB, enableConnectProtocol: true } as const;
const H2_SESSION = { maxSessionMemory: 256, settings: H2_SETTINGS } as const;

function closeSession(session: { close(cb?: () => void): void; destroy(): void; closed: boolean }) {
  return new Promise<void>((resolve) => {
    if (session.closed) {
      resolve();
      return;
    }
    const timer = setTimeout(() => {
      session.destroy();
      resolve();
    }, 2000);
    session.close(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * Direction 'server' over HTTP/2 (RFC 8441): our WebSocketServer listening with
 * `http2: true` (h2c), a raw HTTP/2 session whose extended CONNECT stream carries the
 * fuzzing client's frames. END_STREAM stands for the TCP FIN (RFC 8441 §5).
 */
async function runAgainstServerH2(c: Case): Promise<Run> {
  const o = c.options ?? {};
  const timeout = o.timeout ?? DEFAULT_TIMEOUT;
  const run: Run = { peer: undefined, implInfo: undefined, notes: [], failures: [], unimplemented: [] };
  let implWs: WebSocket | undefined;
  const wss = new WebSocketServer({
    ...implOptions(c),
    perMessageDeflate: o.deflate ? o.deflate.server : false,
  });
  wss.route('/echo', async (ws) => {
    implWs = ws;
    if (ws.transport !== 'h2') run.failures.push(`the connection arrived over ${ws.transport}`);
    for await (const m of ws) await ws.send(m.data, { binary: m.type === 'binary' });
  });
  const { port } = await wss.listen(0, '127.0.0.1', { http2: true });
  let session: ClientHttp2Session | undefined;
  let stream: ClientHttp2Stream | undefined;
  try {
    session = h2Connect(`http://127.0.0.1:${port}`, H2_SESSION);
    session.on('error', () => {});
    const s = session;
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        s.once('remoteSettings', () => resolve());
        s.once('error', reject);
      }),
      timeout,
      'the server SETTINGS',
    );
    // RFC 8441 §3: extended CONNECT only once the server advertised it.
    if (s.remoteSettings.enableConnectProtocol !== true)
      throw new Error('the server did not advertise SETTINGS_ENABLE_CONNECT_PROTOCOL');
    const headers: Record<string, string> = {
      ':method': 'CONNECT',
      ':protocol': 'websocket',
      ':scheme': 'http',
      ':path': '/echo',
      ':authority': `127.0.0.1:${port}`,
      'sec-websocket-version': '13',
    };
    if (o.deflate) headers['sec-websocket-extensions'] = o.deflate.offer;
    const st = s.request(headers, { endStream: false });
    stream = st;
    st.pause();
    const response = await withTimeout(
      new Promise<IncomingHttpHeaders>((resolve, reject) => {
        st.once('response', resolve);
        st.once('error', reject);
        st.once('close', () => reject(new Error(`stream closed (code ${st.rstCode})`)));
      }),
      timeout,
      'the extended CONNECT answer',
    );
    // RFC 8441 §5: a 2xx stands for 101 Switching Protocols.
    if (Number(response[':status']) !== 200)
      throw new Error(`extended CONNECT answered ${response[':status']}`);
    const ext = response['sec-websocket-extensions'];
    const answer = Array.isArray(ext) ? ext.join(', ') : ext;
    const deflate = serverAnswerDeflate(c, answer, run);
    const peer = new Peer({
      socket: st,
      direction: 'server',
      head: Buffer.alloc(0),
      ...(deflate ? { deflate } : {}),
      negotiated: answer ?? '',
      silent: o.silentPeer ?? false,
      h2: true,
    });
    run.peer = peer;
    await runCase(c, peer, run);
    if (implWs !== undefined) {
      run.implInfo = await withTimeout(
        implWs.closed,
        timeout + (o.closeTimeout ?? 2000),
        'server-side close',
      ).catch((err: Error) => {
        run.failures.push(err.message);
        return undefined;
      });
    }
  } finally {
    stream?.destroy();
    if (session) await closeSession(session);
    await withTimeout(wss.close(), 10_000, 'wss.close()').catch((err: Error) =>
      run.failures.push(err.message),
    );
  }
  return run;
}

/**
 * Direction 'client' over HTTP/2: a raw h2c server advertising extended CONNECT whose
 * stream handler answers the handshake by hand; our connect(url, { http2: true }).
 */
async function runAgainstClientH2(c: Case): Promise<Run> {
  const o = c.options ?? {};
  const run: Run = { peer: undefined, implInfo: undefined, notes: [], failures: [], unimplemented: [] };
  const server = h2CreateServer(H2_SESSION);
  const sessions = new Set<{ close(cb?: () => void): void; destroy(): void; closed: boolean }>();
  server.on('session', (session) => {
    sessions.add(session);
    session.on('error', () => {});
  });
  let peerReady!: (p: Peer) => void;
  const peerPromise = new Promise<Peer>((resolve) => {
    peerReady = resolve;
  });
  server.on('stream', (stream: ServerHttp2Stream, h: IncomingHttpHeaders) => {
    stream.on('error', () => {});
    stream.pause();
    const problems: string[] = [];
    // RFC 8441 §4-5: an extended CONNECT, with no Sec-WebSocket-Key, Upgrade or Connection.
    if (h[':method'] !== 'CONNECT') problems.push(`:method ${h[':method']}`);
    if (h[':protocol'] !== 'websocket') problems.push(`:protocol ${h[':protocol']}`);
    if (h[':scheme'] !== 'http') problems.push(`:scheme ${h[':scheme']}`);
    if (h[':path'] !== '/echo') problems.push(`:path ${h[':path']}`);
    if (typeof h[':authority'] !== 'string' || h[':authority'] === '') problems.push(':authority missing');
    if (h['sec-websocket-version'] !== '13') problems.push('sec-websocket-version');
    for (const name of ['sec-websocket-key', 'upgrade', 'connection'])
      if (h[name] !== undefined) problems.push(`${name} sent over HTTP/2`);
    for (const p of problems) run.failures.push(`bad client handshake: ${p}`);
    const offer = h['sec-websocket-extensions'];
    const { answer, deflate } = clientOfferDeflate(c, Array.isArray(offer) ? offer.join(', ') : offer, run);
    stream.respond(
      { ':status': 200, ...(answer !== '' ? { 'sec-websocket-extensions': answer } : {}) },
      { endStream: false },
    );
    peerReady(
      new Peer({
        socket: stream,
        direction: 'client',
        head: Buffer.alloc(0),
        ...(deflate ? { deflate } : {}),
        negotiated: answer,
        silent: o.silentPeer ?? false,
        serverKeepsTcpOpen: o.serverKeepsTcpOpen ?? false,
        h2: true,
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  try {
    await driveOurClient(c, run, port, peerPromise, { http2: true }, (ws) => {
      if (ws.transport !== 'h2') run.failures.push(`our client connected over ${ws.transport}`);
    });
  } finally {
    await Promise.all([...sessions].map(closeSession));
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  return run;
}

/**
 * Our client as the implementation under test, like `wskit connect --echo`: it connects to
 * the peer's server on `port` (with `extra` options), sends every message back with its
 * type until the connection ends, and the case is played once the peer has its handshake.
 * Failures and the close seen by our client go into `run`; `check` sees the new WebSocket.
 */
async function driveOurClient(
  c: Case,
  run: Run,
  port: number,
  peerPromise: Promise<Peer>,
  extra: { http2?: boolean },
  check?: (ws: WebSocket) => void,
): Promise<void> {
  const o = c.options ?? {};
  const timeout = o.timeout ?? DEFAULT_TIMEOUT;
  const deflateOption = o.deflate ? o.deflate.client : undefined;
  let connectError: Error | undefined;
  const implClosed: Promise<CloseInfo | undefined> = connect(`ws://127.0.0.1:${port}/echo`, {
    ...implOptions(c),
    ...extra,
    ...(deflateOption ? { perMessageDeflate: deflateOption } : {}),
  }).then(
    async (ws) => {
      check?.(ws);
      for await (const msg of ws) {
        try {
          await ws.send(msg.data, { binary: msg.type === 'binary' });
        } catch {
          break;
        }
      }
      return ws.closed;
    },
    (err: Error) => {
      connectError = err;
      return undefined;
    },
  );
  const peer = await withTimeout(peerPromise, timeout, 'the client handshake').catch((err: Error) => {
    throw connectError ? new Error(`connect() rejected: ${connectError.message}`) : err;
  });
  run.peer = peer;
  await runCase(c, peer, run);
  run.implInfo = await withTimeout(implClosed, timeout + (o.closeTimeout ?? 2000), 'client-side close').catch(
    (err: Error) => {
      run.failures.push(err.message);
      return undefined;
    },
  );
  if (connectError !== undefined) run.notes.push(`connect() rejected: ${connectError.message}`);
}

async function runCase(c: Case, peer: Peer, run: Run): Promise<void> {
  const o = c.options ?? {};
  const timeout = o.timeout ?? DEFAULT_TIMEOUT;
  // The case itself has a generous bound: a hang is a failure, not a stuck suite.
  const bound = Math.max(20_000, timeout * 4);
  try {
    await withTimeout(c.run(peer), bound, `case ${c.id}`);
  } catch (err) {
    run.failures.push(`case script: ${(err as Error).message}`);
  }
  await peer.finish(c.expect, timeout);
}

/** Runs a case in one direction, over HTTP/1.1 or HTTP/2, and grades it. Never throws. */
export async function runOne(
  c: Case,
  direction: Direction,
  transport: Transport = 'http/1.1',
): Promise<CaseResult> {
  const started = performance.now();
  let run: Run;
  try {
    if (transport === 'h2')
      run = direction === 'server' ? await runAgainstServerH2(c) : await runAgainstClientH2(c);
    else run = direction === 'server' ? await runAgainstServer(c) : await runAgainstClient(c);
  } catch (err) {
    run = {
      peer: undefined,
      implInfo: undefined,
      notes: [],
      failures: [(err as Error).message],
      unimplemented: [],
    };
  }
  const durationMs = Math.round((performance.now() - started) * 10) / 10;
  const base = {
    id: c.id,
    family: c.family,
    direction,
    description: c.description,
    expectation: describeExpectation(c),
    informational: c.informational ?? false,
    durationMs,
  };
  const peer = run.peer;
  if (peer === undefined) {
    return {
      ...base,
      outcome: c.informational ? 'INFORMATIONAL' : 'FAILED',
      notes: [...run.failures.map((f) => `FAILED: ${f}`), ...run.notes],
      frames: [],
      framesTotal: 0,
      close: null,
      closingHandshake: false,
      tcpClosedFirst: 'none',
      tcpOrderOk: false,
    };
  }
  const verdict = judge(c, direction, peer, run.implInfo);
  let outcome = verdict.outcome;
  const notes = [...verdict.notes, ...run.notes];
  if (run.failures.length > 0 || run.unimplemented.length > 0) {
    for (const f of run.failures) notes.push(`FAILED: ${f}`);
    for (const u of run.unimplemented) notes.push(`UNIMPLEMENTED: ${u}`);
    if (c.informational) outcome = 'INFORMATIONAL';
    else outcome = run.failures.length > 0 ? 'FAILED' : outcome === 'FAILED' ? 'FAILED' : 'UNIMPLEMENTED';
  }
  return {
    ...base,
    outcome,
    notes,
    frames: peer.frames,
    framesTotal: peer.framesTotal,
    close: peer.implClose ? { code: peer.implClose.code, reason: peer.implClose.reason } : null,
    closingHandshake: verdict.closingHandshake,
    tcpClosedFirst: verdict.tcpClosedFirst,
    tcpOrderOk: verdict.tcpOrderOk,
    ...(peer.negotiated ? { negotiated: peer.negotiated } : {}),
    durationMs,
  };
}
