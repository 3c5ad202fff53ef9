/**
 * The fuzzing peer's side of permessage-deflate (RFC 7692): a small header parser, the
 * validity rules of a negotiation response, and a compressor/decompressor built on
 * node:zlib's one-shot raw DEFLATE with the previous messages as a preset dictionary
 * (exactly what the other side's sliding window holds under context takeover).
 */
import { constants, deflateRawSync, inflateRawSync } from 'node:zlib';

/** RFC 7692 §7.2.1: the empty stored block a sync flush ends with, removed by the sender. */
export const DEFLATE_TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);

export interface ParsedExtension {
  name: string;
  params: Map<string, string | true>;
  /** Parameters that appeared more than once. */
  duplicates: string[];
}

/** Parses a Sec-WebSocket-Extensions value: `name; a; b=1, other`. Quoted values are unquoted. */
export function parseExtensionHeader(value: string | undefined): ParsedExtension[] {
  if (value === undefined || value.trim() === '') return [];
  const out: ParsedExtension[] = [];
  for (const item of value.split(',')) {
    const parts = item.split(';').map((s) => s.trim());
    const name = parts.shift()!.toLowerCase();
    if (name === '') continue;
    const params = new Map<string, string | true>();
    const duplicates: string[] = [];
    for (const part of parts) {
      if (part === '') continue;
      const eq = part.indexOf('=');
      const key = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
      let val: string | true = eq < 0 ? true : part.slice(eq + 1).trim();
      if (typeof val === 'string' && val.startsWith('"') && val.endsWith('"')) val = val.slice(1, -1);
      if (params.has(key)) duplicates.push(key);
      params.set(key, val);
    }
    out.push({ name, params, duplicates });
  }
  return out;
}

/** Normalized text of a header value (parameters sorted), for comparing offers. */
export function normalizeExtensions(value: string | undefined): string {
  return parseExtensionHeader(value)
    .map((e) => [e.name, ...[...e.params].map(([k, v]) => (v === true ? k : `${k}=${v}`)).sort()].join('; '))
    .join(', ');
}

const KNOWN = new Set([
  'server_no_context_takeover',
  'client_no_context_takeover',
  'server_max_window_bits',
  'client_max_window_bits',
]);

function bitsValue(v: string | true | undefined): number | undefined {
  if (typeof v !== 'string' || !/^(?:[89]|1[0-5])$/.test(v)) return undefined;
  return Number(v);
}

/**
 * Problems of a permessage-deflate response to `offer` (RFC 7692 §7.1), as sentences;
 * empty when the response is a valid acceptance of that offer.
 */
export function responseProblems(response: ParsedExtension, offer: ParsedExtension): string[] {
  const problems: string[] = [];
  if (response.name !== 'permessage-deflate') problems.push(`unexpected extension ${response.name}`);
  if (response.duplicates.length > 0) problems.push(`duplicate parameters ${response.duplicates.join(', ')}`);
  for (const [k, v] of response.params) {
    if (!KNOWN.has(k)) problems.push(`unknown parameter ${k}`);
    if ((k === 'server_no_context_takeover' || k === 'client_no_context_takeover') && v !== true)
      problems.push(`${k} must not have a value`);
    if ((k === 'server_max_window_bits' || k === 'client_max_window_bits') && bitsValue(v) === undefined)
      problems.push(`${k} needs a value 8..15 in a response (got ${String(v)})`);
  }
  // §7.1.1.1: an offer with server_no_context_takeover is accepted only by echoing it.
  if (offer.params.has('server_no_context_takeover') && !response.params.has('server_no_context_takeover'))
    problems.push('server_no_context_takeover was offered but is missing from the response');
  // §7.1.2.1: accepting server_max_window_bits=N means answering with the same or a smaller value.
  const offeredServerBits = bitsValue(offer.params.get('server_max_window_bits'));
  const answeredServerBits = bitsValue(response.params.get('server_max_window_bits'));
  if (offeredServerBits !== undefined) {
    if (answeredServerBits === undefined)
      problems.push('server_max_window_bits was offered but not answered');
    else if (answeredServerBits > offeredServerBits)
      problems.push(`server_max_window_bits=${answeredServerBits} exceeds the offered ${offeredServerBits}`);
  }
  // §7.1.2.2: client_max_window_bits only when offered, and not above an offered value.
  if (response.params.has('client_max_window_bits')) {
    const offered = offer.params.get('client_max_window_bits');
    const answered = bitsValue(response.params.get('client_max_window_bits'));
    if (offered === undefined) problems.push('client_max_window_bits answered but not offered');
    else if (typeof offered === 'string' && answered !== undefined && answered > Number(offered))
      problems.push(`client_max_window_bits=${answered} exceeds the offered ${offered}`);
  }
  return problems;
}

/** How the peer compresses and decompresses once the parameters are agreed. */
export interface PeerDeflateConfig {
  /** Window bits of the peer's own compressor. */
  deflateBits: number;
  deflateNoContextTakeover: boolean;
  /** Window bits the other side (our implementation) may use: the peer inflates with exactly this. */
  inflateBits: number;
  inflateNoContextTakeover: boolean;
}

/**
 * The agreed parameters as seen by the peer. `peerRole` is the peer's own role: 'client'
 * when it fuzzes our server.
 */
export function peerDeflateConfig(
  response: ParsedExtension,
  offer: ParsedExtension,
  peerRole: 'client' | 'server',
): PeerDeflateConfig {
  const serverBits = bitsValue(response.params.get('server_max_window_bits')) ?? 15;
  // A value in the client's offer is the client's own promise (it may go lower, never higher).
  const clientBits =
    bitsValue(response.params.get('client_max_window_bits')) ??
    bitsValue(offer.params.get('client_max_window_bits')) ??
    15;
  const serverNct = response.params.has('server_no_context_takeover');
  const clientNct =
    response.params.has('client_no_context_takeover') || offer.params.has('client_no_context_takeover');
  return peerRole === 'client'
    ? {
        deflateBits: clientBits,
        deflateNoContextTakeover: clientNct,
        inflateBits: serverBits,
        inflateNoContextTakeover: serverNct,
      }
    : {
        deflateBits: serverBits,
        deflateNoContextTakeover: serverNct,
        inflateBits: clientBits,
        inflateNoContextTakeover: clientNct,
      };
}

/** zlib cannot run raw DEFLATE with an 8-bit window; 9 reads every 8-bit stream. */
const zlibBits = (bits: number) => Math.max(9, bits);

/**
 * Message-level compression for the peer. Context takeover is modelled with a preset
 * dictionary: the last 2^bits bytes of the previous messages, which is exactly the
 * sliding window the other side keeps. Inflating with that dictionary also catches an
 * implementation that reaches back further than the agreed window into earlier messages.
 */
export class PeerDeflate {
  readonly config: PeerDeflateConfig;
  private sentWindow: Buffer = Buffer.alloc(0);
  private receivedWindow: Buffer = Buffer.alloc(0);

  constructor(config: PeerDeflateConfig) {
    this.config = config;
  }

  /**
   * Compresses one message. `final` ends it with a BFINAL block (RFC 7692 §7.2.3.4) instead
   * of a stripped sync flush; such a message starts no shared window.
   */
  compress(data: Buffer, opts: { final?: boolean } = {}): Buffer {
    const bits = zlibBits(this.config.deflateBits);
    if (opts.final) {
      this.sentWindow = Buffer.alloc(0);
      return deflateRawSync(data, { windowBits: bits });
    }
    let out = deflateRawSync(data, {
      windowBits: bits,
      finishFlush: constants.Z_SYNC_FLUSH,
      ...(this.sentWindow.length > 0 ? { dictionary: this.sentWindow } : {}),
    });
    if (out.length >= 4 && out.subarray(out.length - 4).equals(DEFLATE_TAIL))
      out = out.subarray(0, out.length - 4);
    this.sentWindow = this.config.deflateNoContextTakeover
      ? Buffer.alloc(0)
      : tail(Buffer.concat([this.sentWindow, data]), 1 << bits);
    return out;
  }

  /** Inflates one whole message from our implementation; throws on invalid data. */
  decompress(payload: Buffer): Buffer {
    const bits = zlibBits(this.config.inflateBits);
    const out = inflateRawSync(Buffer.concat([payload, DEFLATE_TAIL]), {
      windowBits: bits,
      finishFlush: constants.Z_SYNC_FLUSH,
      ...(this.receivedWindow.length > 0 ? { dictionary: this.receivedWindow } : {}),
    });
    this.receivedWindow = this.config.inflateNoContextTakeover
      ? Buffer.alloc(0)
      : tail(Buffer.concat([this.receivedWindow, out]), 1 << this.config.inflateBits);
    return out;
  }
}

function tail(buf: Buffer, n: number): Buffer {
  return buf.length <= n ? buf : Buffer.from(buf.subarray(buf.length - n));
}
