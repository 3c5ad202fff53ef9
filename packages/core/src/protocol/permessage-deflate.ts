/**
 * permessage-deflate (RFC 7692) parameter negotiation. Pure: no zlib here — the Node layer
 * owns the compressors and uses `sideParams` to configure them.
 *
 * A note on window bits 8. RFC 7692 allows LZ77 windows of 2^8..2^15 bytes, but zlib
 * cannot run a *raw* deflate stream with windowBits 8.
 * - Inflating: a decompressor with a larger window accepts any stream produced with a
 *   smaller one, so when the peer compresses with an 8-bit window we inflate with 9.
 * - Deflating: we must never refer further back than the agreed window (the peer may have
 *   sized its decompressor to it). zlib never does with windowBits 9: its matches reach at
 *   most the window size minus 262 bytes (MAX_DIST in zlib's deflate.h: 512 - 262 = 250),
 *   which is inside a 256-byte window. So an agreed 8 is negotiated as 9 for zlib, safely;
 *   a test holds zlib to this (an 8-bit inflater reads what the 9-bit deflater wrote).
 */
import { CloseCode } from './close-codes.js';
import { WebSocketError } from './errors.js';
import { type ExtensionOffer, type ExtensionParam, findDuplicateParam, isExtension } from './extensions.js';

export const PERMESSAGE_DEFLATE = 'permessage-deflate';

/** Messages smaller than this many bytes are sent uncompressed by default. */
export const DEFAULT_THRESHOLD = 1024;

export interface PerMessageDeflateOptions {
  /**
   * Server: always include server_no_context_takeover (reset our compressor after every
   * message). Client: ask the server for it.
   */
  serverNoContextTakeover?: boolean;
  /**
   * Server: ask the client not to use context takeover (client_no_context_takeover in the
   * response). Client: declare that we will not use it (sent in the offer).
   */
  clientNoContextTakeover?: boolean;
  /**
   * Server: the largest LZ77 window (bits, 9..15) we compress with.
   * Client: ask the server to compress with at most this window (8..15).
   */
  serverMaxWindowBits?: number;
  /**
   * Client: whether and how the offer carries client_max_window_bits (RFC 7692 §7.1.2.2).
   * `true` (the default) offers it without a value: the server may choose our window, 8..15;
   * a number (8..15) also promises to compress with at most that window; `false` leaves the
   * parameter out (a server that wants to limit our window then declines compression).
   * Server: the window (8..15) we ask clients that support the parameter to compress with
   * (`true` and `false`: none, we confirm only a value the client offered).
   */
  clientMaxWindowBits?: number | boolean;
  /** Messages smaller than this many bytes are not compressed. Default 1024 (DEFAULT_THRESHOLD). */
  threshold?: number;
  /** zlib compression level (-1..9), passed through to zlib. Default 5 (zlib's own default, 6, costs about twice the CPU for about 5% less output). */
  level?: number;
  /** zlib memLevel (1..9), passed through to zlib. */
  memLevel?: number;
}

/** The agreed parameters of one connection. Window bits are 15 when not limited. */
export interface DeflateParams {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  serverMaxWindowBits: number;
  clientMaxWindowBits: number;
}

/** What one side's compressor and decompressor should be configured with. */
export interface SideParams {
  inflateWindowBits: number;
  deflateWindowBits: number;
  inflateNoContextTakeover: boolean;
  deflateNoContextTakeover: boolean;
}

const SERVER_NO_CONTEXT_TAKEOVER = 'server_no_context_takeover';
const CLIENT_NO_CONTEXT_TAKEOVER = 'client_no_context_takeover';
const SERVER_MAX_WINDOW_BITS = 'server_max_window_bits';
const CLIENT_MAX_WINDOW_BITS = 'client_max_window_bits';
const KNOWN_PARAMS = new Set([
  SERVER_NO_CONTEXT_TAKEOVER,
  CLIENT_NO_CONTEXT_TAKEOVER,
  SERVER_MAX_WINDOW_BITS,
  CLIENT_MAX_WINDOW_BITS,
]);

// ---------------------------------------------------------------------------------------
// Options

function checkWindowBits(name: string, value: unknown, min: number): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > 15) {
    throw new RangeError(
      `perMessageDeflate.${name} must be an integer from ${min} to 15, got ${String(value)}`,
    );
  }
}

/**
 * Validate options; throws RangeError (or TypeError for a wrong type) on a bad value.
 * Window bits must be integers 8..15 (8 runs zlib at 9; see the note at the top of this
 * file). `side` is accepted for symmetry with callers that know it.
 */
export function validateDeflateOptions(options: PerMessageDeflateOptions, side?: 'client' | 'server'): void {
  if (options === null || typeof options !== 'object') {
    throw new TypeError('perMessageDeflate options must be an object');
  }
  void side;
  checkWindowBits('serverMaxWindowBits', options.serverMaxWindowBits, 8);
  if (typeof options.clientMaxWindowBits !== 'boolean') {
    checkWindowBits('clientMaxWindowBits', options.clientMaxWindowBits, 8);
  }
  for (const key of ['serverNoContextTakeover', 'clientNoContextTakeover'] as const) {
    const v = options[key];
    if (v !== undefined && typeof v !== 'boolean') {
      throw new TypeError(`perMessageDeflate.${key} must be a boolean, got ${String(v)}`);
    }
  }
  const { threshold, level, memLevel } = options;
  if (threshold !== undefined && (typeof threshold !== 'number' || !(threshold >= 0))) {
    throw new RangeError(`perMessageDeflate.threshold must be a number >= 0, got ${String(threshold)}`);
  }
  if (level !== undefined && (!Number.isInteger(level) || level < -1 || level > 9)) {
    throw new RangeError(`perMessageDeflate.level must be an integer from -1 to 9, got ${String(level)}`);
  }
  if (memLevel !== undefined && (!Number.isInteger(memLevel) || memLevel < 1 || memLevel > 9)) {
    throw new RangeError(
      `perMessageDeflate.memLevel must be an integer from 1 to 9, got ${String(memLevel)}`,
    );
  }
}

/** The threshold option with its default applied. */
export function resolveThreshold(options: PerMessageDeflateOptions): number {
  return options.threshold ?? DEFAULT_THRESHOLD;
}

// ---------------------------------------------------------------------------------------
// Per-side configuration

/**
 * The compressor/decompressor settings of one side. The side deflates with its own
 * parameters (server_* on the server) and inflates with the peer's.
 * A window of 8 becomes 9 both ways (see the note at the top of this file).
 */
export function sideParams(params: DeflateParams, side: 'client' | 'server'): SideParams {
  const server = side === 'server';
  const deflateWindowBits = server ? params.serverMaxWindowBits : params.clientMaxWindowBits;
  const inflateWindowBits = server ? params.clientMaxWindowBits : params.serverMaxWindowBits;
  return {
    deflateWindowBits: Math.max(9, deflateWindowBits),
    // zlib cannot inflate raw deflate with windowBits 8 either; 9 is a superset of 8.
    inflateWindowBits: inflateWindowBits === 8 ? 9 : inflateWindowBits,
    deflateNoContextTakeover: server ? params.serverNoContextTakeover : params.clientNoContextTakeover,
    inflateNoContextTakeover: server ? params.clientNoContextTakeover : params.serverNoContextTakeover,
  };
}

// ---------------------------------------------------------------------------------------
// Parameter reading shared by both sides

/** A window-bits value: RFC 7692 §7.1.2 — a decimal integer 8..15 without leading zeros. */
function parseWindowBits(value: string): number | undefined {
  return /^(?:[89]|1[0-5])$/.test(value) ? Number(value) : undefined;
}

interface ReadParams {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  /** undefined: absent. */
  serverMaxWindowBits: number | undefined;
  /** undefined: absent; true: present without a value. */
  clientMaxWindowBits: number | true | undefined;
}

/**
 * Read the four parameters, or return a description of why they are invalid. `inResponse`
 * selects the response rules (client_max_window_bits needs a value there).
 */
function readParams(params: readonly ExtensionParam[], inResponse: boolean): ReadParams | string {
  const dup = findDuplicateParam({ name: PERMESSAGE_DEFLATE, params: params as ExtensionParam[] });
  if (dup !== undefined) return `the parameter ${dup} appears more than once`;
  const out: ReadParams = {
    serverNoContextTakeover: false,
    clientNoContextTakeover: false,
    serverMaxWindowBits: undefined,
    clientMaxWindowBits: undefined,
  };
  for (const [rawName, value] of params) {
    const name = rawName.toLowerCase();
    if (!KNOWN_PARAMS.has(name)) return `unknown parameter ${rawName}`;
    if (name === SERVER_NO_CONTEXT_TAKEOVER || name === CLIENT_NO_CONTEXT_TAKEOVER) {
      // RFC 7692 §7.1.1: these parameters have no value.
      if (value !== true) return `the parameter ${rawName} must not have a value`;
      if (name === SERVER_NO_CONTEXT_TAKEOVER) out.serverNoContextTakeover = true;
      else out.clientNoContextTakeover = true;
    } else if (name === SERVER_MAX_WINDOW_BITS) {
      // RFC 7692 §7.1.2.1: server_max_window_bits always carries a value.
      if (value === true) return `the parameter ${rawName} needs a value`;
      const bits = parseWindowBits(value);
      if (bits === undefined)
        return `invalid value ${JSON.stringify(value)} for ${rawName} (expected 8 to 15)`;
      out.serverMaxWindowBits = bits;
    } else {
      // RFC 7692 §7.1.2.2: optional value in an offer, required in a response.
      if (value === true) {
        if (inResponse) return `the parameter ${rawName} needs a value in a response`;
        out.clientMaxWindowBits = true;
      } else {
        const bits = parseWindowBits(value);
        if (bits === undefined)
          return `invalid value ${JSON.stringify(value)} for ${rawName} (expected 8 to 15)`;
        out.clientMaxWindowBits = bits;
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Client

function offerFor(options: PerMessageDeflateOptions): ExtensionOffer {
  const params: ExtensionParam[] = [];
  if (options.serverNoContextTakeover) params.push([SERVER_NO_CONTEXT_TAKEOVER, true]);
  if (options.clientNoContextTakeover) params.push([CLIENT_NO_CONTEXT_TAKEOVER, true]);
  if (options.serverMaxWindowBits !== undefined)
    params.push([SERVER_MAX_WINDOW_BITS, String(options.serverMaxWindowBits)]);
  // Offered by default, as browsers do: a server that bounds the client's window can then
  // say so instead of declining (RFC 7692 §7.1.2.2).
  const clientBits = options.clientMaxWindowBits ?? true;
  if (clientBits === true) params.push([CLIENT_MAX_WINDOW_BITS, true]);
  else if (clientBits !== false) params.push([CLIENT_MAX_WINDOW_BITS, String(clientBits)]);
  return { name: PERMESSAGE_DEFLATE, params };
}

/**
 * The client's offers, in preference order: one permessage-deflate offer per options
 * object. Validates each (RangeError).
 */
export function buildOffers(
  options: PerMessageDeflateOptions | readonly PerMessageDeflateOptions[],
): ExtensionOffer[] {
  const list: readonly PerMessageDeflateOptions[] = Array.isArray(options)
    ? options
    : [options as PerMessageDeflateOptions];
  return list.map((o) => {
    validateDeflateOptions(o, 'client');
    return offerFor(o);
  });
}

function mandatoryExt(message: string): WebSocketError {
  return new WebSocketError(CloseCode.MANDATORY_EXT, message);
}

/** Why the response cannot be the answer to this offer, or undefined if it can. */
function incompatibility(response: ReadParams, offer: PerMessageDeflateOptions): string | undefined {
  // RFC 7692 §7.1.1.1: accepting an offer with server_no_context_takeover means echoing it.
  if (offer.serverNoContextTakeover && !response.serverNoContextTakeover) {
    return 'server_no_context_takeover was requested but not confirmed';
  }
  if (offer.serverMaxWindowBits !== undefined) {
    // RFC 7692 §7.1.2.1: accepting an offer with server_max_window_bits means answering with
    // the same or a smaller value.
    if (response.serverMaxWindowBits === undefined) {
      return `server_max_window_bits=${offer.serverMaxWindowBits} was requested but not confirmed`;
    }
    if (response.serverMaxWindowBits > offer.serverMaxWindowBits) {
      return `server_max_window_bits=${response.serverMaxWindowBits} is larger than the requested ${offer.serverMaxWindowBits}`;
    }
  }
  if (response.clientMaxWindowBits !== undefined) {
    // RFC 7692 §7.1.2.2: only allowed when the offer had client_max_window_bits, and then
    // not larger than a value it carried.
    if (offer.clientMaxWindowBits === false) {
      return 'client_max_window_bits was not offered';
    }
    if (typeof offer.clientMaxWindowBits === 'number' && response.clientMaxWindowBits !== true) {
      if (response.clientMaxWindowBits > offer.clientMaxWindowBits) {
        return `client_max_window_bits=${response.clientMaxWindowBits} is larger than the offered ${offer.clientMaxWindowBits}`;
      }
    }
  }
  return undefined;
}

/**
 * Check the server's `Sec-WebSocket-Extensions` answer against what the client offered.
 * Returns null when the server accepted no extension, or the agreed parameters. The offer
 * answered is the first one the response is compatible with.
 *
 * On the client, `clientNoContextTakeover` is true when the server asked for it or we
 * declared it in the matching offer, and `clientMaxWindowBits` is the smaller of the
 * server's limit and the one we declared, since both are limits on our own compressor.
 *
 * Throws WebSocketError 1010 (mandatory-ext) when the answer is unacceptable.
 */
export function acceptResponse(
  response: readonly ExtensionOffer[],
  offered: readonly PerMessageDeflateOptions[],
): DeflateParams | null {
  if (response.length === 0) return null;
  for (const ext of response) {
    if (!isExtension(ext, PERMESSAGE_DEFLATE) || offered.length === 0) {
      throw mandatoryExt(`The server accepted the extension "${ext.name}", which was not offered`);
    }
  }
  if (response.length > 1) {
    throw mandatoryExt('The server accepted permessage-deflate more than once');
  }
  const read = readParams(response[0]!.params, true);
  if (typeof read === 'string') {
    throw mandatoryExt(`The server's permessage-deflate response is invalid: ${read}`);
  }

  const reasons: string[] = [];
  for (const offer of offered) {
    const reason = incompatibility(read, offer);
    if (reason !== undefined) {
      reasons.push(reason);
      continue;
    }
    const ownLimit = typeof offer.clientMaxWindowBits === 'number' ? offer.clientMaxWindowBits : 15;
    const serverLimit = typeof read.clientMaxWindowBits === 'number' ? read.clientMaxWindowBits : 15;
    return {
      serverNoContextTakeover: read.serverNoContextTakeover,
      clientNoContextTakeover: read.clientNoContextTakeover || offer.clientNoContextTakeover === true,
      serverMaxWindowBits: read.serverMaxWindowBits ?? 15,
      clientMaxWindowBits: Math.min(ownLimit, serverLimit),
    };
  }
  const detail = offered.length === 1 ? reasons[0] : reasons.map((r, i) => `offer ${i + 1}: ${r}`).join('; ');
  throw mandatoryExt(`The server's permessage-deflate response does not match any offer (${detail})`);
}

// ---------------------------------------------------------------------------------------
// Server

/**
 * Choose the first acceptable permessage-deflate offer (RFC 7692 §7.1: offers with unknown,
 * duplicate or invalid parameters are declined, as are offers we cannot honour). Returns
 * the response to send and the agreed parameters, or null when no offer is acceptable.
 * Other extensions in `offers` are ignored. Throws RangeError on invalid `options`.
 *
 * On the server the agreed parameters are exactly those written in the response: a
 * client's client_no_context_takeover hint is not relied upon (keeping our decompressor's
 * context is always safe).
 */
export function negotiate(
  offers: readonly ExtensionOffer[],
  options: PerMessageDeflateOptions,
): { response: ExtensionOffer; params: DeflateParams } | null {
  validateDeflateOptions(options);
  for (const offer of offers) {
    if (!isExtension(offer, PERMESSAGE_DEFLATE)) continue;
    const read = readParams(offer.params, false);
    if (typeof read === 'string') continue; // RFC 7692 §7.1: decline, try the next offer

    // server_max_window_bits: the smaller of the client's request and our own limit.
    let serverBits: number | undefined;
    if (read.serverMaxWindowBits !== undefined || options.serverMaxWindowBits !== undefined) {
      serverBits = Math.min(read.serverMaxWindowBits ?? 15, options.serverMaxWindowBits ?? 15);
    }

    // client_max_window_bits: RFC 7692 §7.1.2.2 — only when the offer had the parameter.
    let clientBits: number | undefined;
    if (read.clientMaxWindowBits !== undefined) {
      const offeredBits = read.clientMaxWindowBits === true ? undefined : read.clientMaxWindowBits;
      if (typeof options.clientMaxWindowBits === 'number') {
        clientBits = Math.min(options.clientMaxWindowBits, offeredBits ?? 15);
      } else {
        // The client already told us the largest window it will use: confirm it, so that
        // our decompressor can be sized to it.
        clientBits = offeredBits;
      }
    }

    const serverNoContextTakeover = read.serverNoContextTakeover || options.serverNoContextTakeover === true;
    const clientNoContextTakeover = options.clientNoContextTakeover === true;
    const params: ExtensionParam[] = [];
    if (serverNoContextTakeover) params.push([SERVER_NO_CONTEXT_TAKEOVER, true]);
    if (clientNoContextTakeover) params.push([CLIENT_NO_CONTEXT_TAKEOVER, true]);
    if (serverBits !== undefined) params.push([SERVER_MAX_WINDOW_BITS, String(serverBits)]);
    if (clientBits !== undefined) params.push([CLIENT_MAX_WINDOW_BITS, String(clientBits)]);
    return {
      response: { name: PERMESSAGE_DEFLATE, params },
      params: {
        serverNoContextTakeover,
        clientNoContextTakeover,
        serverMaxWindowBits: serverBits ?? 15,
        clientMaxWindowBits: clientBits ?? 15,
      },
    };
  }
  return null;
}
