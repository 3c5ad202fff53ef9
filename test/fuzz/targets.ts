/**
 * Fuzz targets and their invariants. Each `run` throws when an invariant breaks: an
 * exception of a type the API does not document, an internal error (1011) standing for
 * one, a limit not enforced, or a result that is inconsistent with what was parsed.
 */
import { Buffer, isUtf8 } from 'node:buffer';
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { isToken } from '../../packages/core/src/protocol/extensions.js';
import { isValidKey } from '../../packages/core/src/protocol/handshake.js';
import {
  acceptResponse,
  buildAcceptResponse,
  buildRequestHeaders,
  computeAccept,
  type ExtensionOffer,
  FrameParser,
  formatExtensions,
  HandshakeError,
  isValidWireCloseCode,
  negotiate,
  Protocol,
  parseExtensions,
  selectSubprotocol,
  validateRequest,
  validateResponse,
  WebSocketError,
} from '../../packages/core/src/protocol/index.js';
import type { FuzzTarget } from './engine.js';

const b = (s: string) => Buffer.from(s, 'latin1');

class InvariantError extends Error {
  override name = 'InvariantError';
}

function invariant(ok: unknown, message: string): asserts ok {
  if (!ok) throw new InvariantError(message);
}

/** Rethrows anything that is not one of `allowed`: the API documents no other exception. */
function only(err: unknown, ...allowed: Array<new (...args: never[]) => Error>): void {
  if (allowed.some((type) => err instanceof type)) return;
  throw err instanceof Error ? err : new Error(String(err));
}

// ---- frames: the sans-I/O engine (FrameParser, MessageAssembler, UTF-8, Close) ----------

export const FRAME_LIMITS = { maxFrameSize: 16 * 1024, maxMessageSize: 64 * 1024 } as const;
let execCount = 0;
/** Codes a peer's bytes may legitimately fail the connection with. */
const PEER_FAILURE_CODES = new Set([1002, 1007, 1009]);

/**
 * Input layout: byte 0 = flags (bit 0: we are the client, bit 1: permessage-deflate
 * negotiated, bits 2-3: chunking mode), byte 1 = chunk size, then the byte stream.
 */
function runFrames(input: Buffer): void {
  if (input.length < 2) return;
  const flags = input[0]!;
  const side = flags & 1 ? 'client' : 'server';
  const compression = (flags & 2) !== 0;
  const mode = (flags >> 2) & 3;
  const size = Math.max(1, input[1]!);
  const stream = input.subarray(2);
  const chunks: Buffer[] = [];
  if (mode === 0) chunks.push(stream);
  else if (mode === 1) for (let i = 0; i < stream.length; i++) chunks.push(stream.subarray(i, i + 1));
  else for (let i = 0; i < stream.length; i += size) chunks.push(stream.subarray(i, i + size));

  // Every 16th input: ArrayBuffer memory allocated while it is parsed, with the engine
  // still alive, must stay within what the limits allow (a frame being received, a
  // message being assembled, copies of what was pushed).
  const sampled = ++execCount % 16 === 0;
  const before = sampled ? process.memoryUsage().arrayBuffers : 0;
  // The engine: never throws for bad bytes, fails with a typed close code.
  const p = new Protocol({ side, compression, ...FRAME_LIMITS });
  let pushed = 0;
  let messageBytes = 0;
  for (const chunk of chunks) {
    // The parser owns (and unmasks in place) what it is given: a copy per chunk.
    p.receiveData(Buffer.from(chunk));
    pushed += chunk.length;
    invariant(p.bufferedInbound <= pushed, `parser holds ${p.bufferedInbound} B of ${pushed} B received`);
    p.frameHooks ??= {
      inbound(frame) {
        invariant(
          frame.payload.length <= FRAME_LIMITS.maxFrameSize,
          `frame of ${frame.payload.length} B passed`,
        );
        return frame;
      },
      outbound: (frame) => frame,
    };
    // Stand-in for zlib: the frames' bytes are "inflated" to themselves.
    p.inflater ??= {
      inflate(payloads) {
        const data = Buffer.concat(payloads);
        messageBytes += data.length;
        p.receiveInflated(data, true);
      },
    };
    for (let ev = p.nextEvent(); ev !== undefined; ev = p.nextEvent()) {
      switch (ev.type) {
        case 'message':
          invariant(ev.data.length <= FRAME_LIMITS.maxMessageSize, `message of ${ev.data.length} B passed`);
          if (ev.opcode === 1) invariant(isUtf8(ev.data), 'a text message with invalid UTF-8 passed');
          break;
        case 'ping':
        case 'pong':
          invariant(ev.data.length <= 125, `control payload of ${ev.data.length} B passed`);
          break;
        case 'close':
          invariant(ev.code === 1005 || isValidWireCloseCode(ev.code), `close code ${ev.code} passed`);
          invariant(p.takeOutput().length > 0, 'a Close was not answered');
          break;
        case 'error':
          invariant(ev.error instanceof WebSocketError, 'error event without WebSocketError');
          // 1011 here means an untyped exception was caught and wrapped.
          invariant(
            PEER_FAILURE_CODES.has(ev.error.code),
            `peer bytes failed the connection with ${ev.error.code}: ${ev.error.message} ${String((ev.error.cause as Error | undefined)?.stack ?? '')}`,
          );
          invariant(p.takeOutput().length > 0, 'a failure queued no Close');
          break;
      }
    }
  }
  invariant(messageBytes <= pushed, 'more payload than received');
  if (sampled) {
    const grown = process.memoryUsage().arrayBuffers - before;
    const bound = 2 * FRAME_LIMITS.maxMessageSize + FRAME_LIMITS.maxFrameSize + 4 * input.length + 64 * 1024;
    invariant(grown <= bound, `parsing ${input.length} B allocated ${grown} B (bound ${bound} B)`);
    invariant(p.bufferedInbound >= 0, 'engine released early');
  }

  // The bare FrameParser: only WebSocketError escapes next().
  const parser = new FrameParser({
    side,
    maxFrameSize: FRAME_LIMITS.maxFrameSize,
    allowedRsv: compression ? 4 : 0,
  });
  try {
    for (const chunk of chunks) {
      parser.push(Buffer.from(chunk));
      while (parser.next() !== null) {
        // frames are checked through Protocol above
      }
    }
  } catch (err) {
    only(err, WebSocketError);
  }
}

const frameHeaders = [
  b('\x81\x05'),
  b('\x01\x01'),
  b('\x80\x01'),
  b('\x00\x00'),
  b('\x88\x02\x03\xe8'),
  b('\x89\x00'),
  b('\x8a\x7d'),
  b('\x82\x7e\x00\x7e'),
  b('\x82\x7f\x00\x00\x00\x00\x00\x10\x00\x00'),
  b('\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x00'),
  b('\x81\x85\x37\xfa\x21\x3d'),
  b('\xc1\x05'),
  b('\x83\x00'),
  b('\x8b\x00'),
  b('\x88\x01\x03'),
  b('\x88\x82'),
  b('\xce\xba'),
  b('\xed\xa0\x80'),
  b('\xf4\x90\x80\x80'),
  b('\xc0\xaf'),
  b('\xf0\x9f\x98'),
];

const often = <T>(usual: T, other: fc.Arbitrary<T>) =>
  fc.oneof({ weight: 5, arbitrary: fc.constant(usual) }, { weight: 1, arbitrary: other });

/** Frames as the peer writes them, mostly well-formed (masking follows the side). */
const arbFrame = (masked: boolean) =>
  fc
    .record({
      fin: often(true, fc.constant(false)),
      rsv: often(0, fc.integer({ min: 0, max: 7 })),
      opcode: fc.oneof(
        { weight: 4, arbitrary: fc.constantFrom(0, 1, 2, 8, 9, 10) },
        { weight: 1, arbitrary: fc.constantFrom(3, 7, 11, 15) },
      ),
      masked: often(masked, fc.constant(!masked)),
      payload: fc.oneof(
        fc.uint8Array({ maxLength: 140 }),
        fc.string({ unit: 'binary', maxLength: 40 }).map((s) => new Uint8Array(Buffer.from(s))),
        // A Close payload: a code near the interesting ranges, then a reason (valid or not).
        fc
          .tuple(
            fc.oneof(
              fc.integer({ min: 995, max: 1020 }),
              fc.constantFrom(0, 2999, 3000, 3999, 4000, 4999, 5000, 65535),
            ),
            fc.oneof(
              fc.string({ maxLength: 20 }).map((t) => Buffer.from(t)),
              fc.uint8Array({ maxLength: 8 }).map((u) => Buffer.from(u)),
            ),
          )
          .map(([code, reason]) => {
            const out = Buffer.alloc(2 + reason.length);
            out.writeUInt16BE(code, 0);
            reason.copy(out, 2);
            return new Uint8Array(out);
          }),
      ),
      lengthForm: often('min', fc.constantFrom('16', '64', 'lie')),
      lie: fc.integer({ min: 0, max: 0x20000 }),
    })
    .map(({ fin, rsv, opcode, masked, payload, lengthForm, lie }) => {
      const len = lengthForm === 'lie' ? lie : payload.length;
      const head = [((fin ? 0x80 : 0) | (rsv << 4) | opcode) & 0xff];
      const m = masked ? 0x80 : 0;
      if (lengthForm === '16') head.push(m | 126, (len >> 8) & 0xff, len & 0xff);
      else if (lengthForm === '64' || len > 0xffff)
        head.push(
          m | 127,
          0,
          0,
          0,
          0,
          (len >>> 24) & 0xff,
          (len >> 16) & 0xff,
          (len >> 8) & 0xff,
          len & 0xff,
        );
      else if (len >= 126) head.push(m | 126, (len >> 8) & 0xff, len & 0xff);
      else head.push(m | len);
      const key = masked ? [0x12, 0x34, 0x56, 0x78] : [];
      const body = Buffer.from(payload);
      if (masked) for (let i = 0; i < body.length; i++) body[i]! ^= key[i & 3]!;
      return Buffer.concat([Buffer.from(head), Buffer.from(key), body]);
    });

const maskedFrame = arbFrame(true);
const unmaskedFrame = arbFrame(false);

export const framesTarget: FuzzTarget = {
  name: 'frames',
  run: runFrames,
  arbitrary: fc.oneof(
    // Flags bit 0 clear: we are the server, the peer (a client) masks.
    fc
      .tuple(
        fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: 0, max: 255 }),
        fc.array(maskedFrame, { maxLength: 8 }),
      )
      .map(([flags, size, frames]) => Buffer.concat([Buffer.from([flags & ~1, size]), ...frames])),
    fc
      .tuple(
        fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: 0, max: 255 }),
        fc.array(unmaskedFrame, { maxLength: 8 }),
      )
      .map(([flags, size, frames]) => Buffer.concat([Buffer.from([flags | 1, size]), ...frames])),
  ),
  dictionary: frameHeaders,
  coverage: ['/packages/core/src/protocol/'],
  maxLength: 4096,
};

// ---- handshake: request and response validation, header building -----------------------

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const OFFERED = ['chat', 'v2.json'];

function headersOf(lines: string[]): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    const prev = headers[name];
    headers[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  return headers;
}

/** Byte 0 picks the check: request validation, response validation, or request building. */
function runHandshake(input: Buffer): void {
  if (input.length < 1) return;
  const mode = input[0]! % 3;
  const text = input.subarray(1).toString('latin1');
  const [first = '', ...lines] = text.split(/\r?\n/);
  const headers = headersOf(lines);
  if (mode === 0) {
    const [method = '', url = '', version = ''] = first.split(' ');
    let validated: ReturnType<typeof validateRequest>;
    try {
      validated = validateRequest({ method, url, httpVersion: version.replace(/^HTTP\//, ''), headers });
    } catch (err) {
      only(err, HandshakeError);
      invariant((err as HandshakeError).status >= 400, 'a refusal with a non-error status');
      return;
    }
    invariant(isValidKey(validated.key), 'an invalid key passed');
    invariant(new Set(validated.protocols).size === validated.protocols.length, 'duplicate protocols passed');
    for (const p of validated.protocols) invariant(isToken(p), `protocol ${JSON.stringify(p)} passed`);
    // What validation let through must be safe to answer with (no TypeError, no header injection).
    const protocol = selectSubprotocol(validated.protocols, ['*']);
    const agreed = negotiate(validated.extensions, {});
    const head = buildAcceptResponse({
      key: validated.key,
      ...(protocol !== undefined ? { protocol } : {}),
      extensions: agreed ? formatExtensions([agreed.response]) : '',
    });
    invariant(
      head.endsWith('\r\n\r\n') && head.indexOf('\r\n\r\n') === head.length - 4,
      'response head split',
    );
  } else if (mode === 1) {
    const status = Number.parseInt(first, 10);
    try {
      const result = validateResponse(
        { status: Number.isNaN(status) ? 0 : status, headers },
        { key: KEY, protocols: OFFERED },
      );
      invariant(
        result.protocol === undefined || OFFERED.includes(result.protocol),
        'an unoffered protocol passed',
      );
      try {
        acceptResponse(result.extensions, [{}]);
      } catch (err) {
        only(err, WebSocketError);
        invariant(
          (err as WebSocketError).code === 1010,
          'extension answer refused with a code other than 1010',
        );
      }
    } catch (err) {
      only(err, HandshakeError, InvariantError);
      if (err instanceof InvariantError) throw err;
    }
  } else {
    const extra: Record<string, string> = {};
    for (const [name, value] of Object.entries(headers))
      extra[name] = Array.isArray(value) ? value.join('\n') : value;
    // A raw header value from the first line, CR/LF and all.
    extra['x-raw'] = first;
    try {
      const out = buildRequestHeaders({ key: KEY, protocols: OFFERED, headers: extra });
      for (const [name, value] of Object.entries(out)) {
        invariant(isToken(name), `header name ${JSON.stringify(name)} passed`);
        invariant(!/[\r\n\0]/.test(value), `header ${name} carries CR/LF/NUL`);
      }
    } catch (err) {
      only(err, TypeError, SyntaxError, InvariantError);
      if (err instanceof InvariantError) throw err;
    }
  }
}

const handshakeTokens = [
  'GET / HTTP/1.1\r\n',
  'Host: example.com\r\n',
  'Upgrade: websocket\r\n',
  'Connection: Upgrade\r\n',
  'Connection: keep-alive, Upgrade\r\n',
  `Sec-WebSocket-Key: ${KEY}\r\n`,
  'Sec-WebSocket-Version: 13\r\n',
  'Sec-WebSocket-Protocol: chat, v2.json\r\n',
  'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n',
  `Sec-WebSocket-Accept: ${computeAccept(KEY)}\r\n`,
  'Origin: http://example.com\r\n',
  '101\r\n',
  'HTTP/1.0',
  ', ',
  '; ',
  '="',
  '"',
  '\r\n',
  '\0',
  '\x7f',
  'é',
  ' \t',
  'sec-websocket-version: 8\r\n',
].map(b);

const arbHeaderLine = fc.oneof(
  fc.constantFrom(...handshakeTokens.map((t) => t.toString('latin1'))),
  fc
    .tuple(
      fc.constantFrom(
        'Upgrade',
        'Connection',
        'Sec-WebSocket-Protocol',
        'Sec-WebSocket-Extensions',
        'Host',
        'X-A',
      ),
      fc.string({ unit: 'binary-ascii', maxLength: 30 }),
    )
    .map(([n, v]) => `${n}: ${v}\r\n`),
);

export const handshakeTarget: FuzzTarget = {
  name: 'handshake',
  run: runHandshake,
  arbitrary: fc
    .tuple(fc.integer({ min: 0, max: 2 }), fc.array(arbHeaderLine, { maxLength: 12 }))
    .map(([mode, lines]) => Buffer.concat([Buffer.from([mode]), b(lines.join(''))])),
  dictionary: handshakeTokens,
  coverage: [
    '/packages/core/src/protocol/handshake',
    '/packages/core/src/protocol/extensions',
    '/packages/core/src/protocol/permessage-deflate',
  ],
  maxLength: 2048,
};

// ---- extensions: the Sec-WebSocket-Extensions grammar and negotiation ------------------

/** The header value (lines split at LF: several header lines); then parse, print, re-parse, negotiate. */
function runExtensions(input: Buffer): void {
  const text = input.toString('latin1');
  const value = text.includes('\n') ? text.split('\n') : text;
  let offers: ExtensionOffer[];
  try {
    offers = parseExtensions(value);
  } catch (err) {
    only(err, HandshakeError);
    invariant((err as HandshakeError).status === 400, 'a syntax error with a status other than 400');
    return;
  }
  for (const offer of offers) {
    invariant(isToken(offer.name), `name ${JSON.stringify(offer.name)} passed`);
    for (const [name, v] of offer.params) {
      invariant(isToken(name) && (v === true || isToken(v)), `parameter ${JSON.stringify([name, v])} passed`);
    }
  }
  // Whatever parses can be printed, and printing round-trips.
  const printed = formatExtensions(offers);
  invariant(
    isDeepStrictEqual(parseExtensions(printed), offers),
    `round trip changed ${JSON.stringify(offers)}`,
  );
  // Negotiation never throws on what a peer sends: the server declines, the client fails with 1010.
  for (const options of [
    {},
    { serverMaxWindowBits: 10 },
    { clientMaxWindowBits: true, serverNoContextTakeover: true },
  ]) {
    const agreed = negotiate(offers, options);
    if (agreed !== null) formatExtensions([agreed.response]);
    try {
      acceptResponse(offers, [options]);
    } catch (err) {
      only(err, WebSocketError);
      invariant((err as WebSocketError).code === 1010, 'refused with a code other than 1010');
    }
  }
}

const extensionTokens = [
  'permessage-deflate',
  'x-webkit-deflate-frame',
  'server_no_context_takeover',
  'client_no_context_takeover',
  'server_max_window_bits',
  'client_max_window_bits',
  '=',
  '="',
  '"',
  '\\',
  ';',
  ',',
  ' ',
  '\t',
  '8',
  '9',
  '15',
  '16',
  '010',
  '\n',
  '\0',
  'é',
].map(b);

/** Mostly well-formed headers: names, parameters and values from the grammar, odd spacing and quoting. */
const arbToken = fc.oneof(
  fc.constantFrom('permessage-deflate', 'x-webkit-deflate-frame', 'foo', 'a'),
  fc.string({ unit: fc.constantFrom(...'abz09-_.!#$%&*+^`|~'.split('')), minLength: 1, maxLength: 6 }),
);
const arbParam = fc
  .tuple(
    fc.oneof(
      fc.constantFrom(
        'server_no_context_takeover',
        'client_no_context_takeover',
        'server_max_window_bits',
        'client_max_window_bits',
      ),
      arbToken,
    ),
    fc.option(
      fc.oneof(
        fc.constantFrom('8', '9', '10', '15', '16', '7', '010', '', '1.5'),
        arbToken,
        fc.string({ unit: 'binary-ascii', maxLength: 4 }),
      ),
    ),
    fc.constantFrom('', '"'),
    fc.constantFrom('', ' ', '\t', '  '),
  )
  .map(([name, value, quote, ows]) =>
    value === null ? `${ows};${ows}${name}` : `${ows};${ows}${name}${ows}=${ows}${quote}${value}${quote}`,
  );
const arbExtensionHeader = fc
  .tuple(
    fc.array(fc.tuple(arbToken, fc.array(arbParam, { maxLength: 5 })), { maxLength: 4 }),
    fc.constantFrom(', ', ',', ' ,', ',,', '\n'),
  )
  .map(([exts, sep]) => b(exts.map(([name, params]) => name + params.join('')).join(sep)));

export const extensionsTarget: FuzzTarget = {
  name: 'extensions',
  run: runExtensions,
  arbitrary: fc.oneof(
    { weight: 3, arbitrary: arbExtensionHeader },
    {
      weight: 1,
      arbitrary: fc
        .array(fc.constantFrom(...extensionTokens.map((t) => t.toString('latin1'))), { maxLength: 24 })
        .map((parts) => b(parts.join(''))),
    },
  ),
  dictionary: extensionTokens,
  coverage: ['/packages/core/src/protocol/extensions', '/packages/core/src/protocol/permessage-deflate'],
  maxLength: 1024,
};

export const TARGETS = [framesTarget, handshakeTarget, extensionsTarget];
