import type { IncomingMessage } from 'node:http';
import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import type { ExtensionOffer } from '../protocol/extensions.js';
import { acceptResponse, type PerMessageDeflateOptions } from '../protocol/permessage-deflate.js';
import type { MessageCompressor } from './compressor.js';
import { createPerMessageDeflate } from './deflate.js';
import type { TlsOptions } from './options.js';
import { checkServerIdentity } from './tls-identity.js';

/** Helpers shared by the HTTP/1.1 and the HTTP/2 (RFC 8441) client handshakes. */

const MAX_ERROR_BODY = 64 * 1024;

/** Is `response` an acceptable answer to this one offer? (acceptResponse takes the first such.) */
export function answers(response: ExtensionOffer[], offer: PerMessageDeflateOptions): boolean {
  try {
    return acceptResponse(response, [offer]) !== null;
  } catch {
    return false;
  }
}

export function toOfferList(
  option: boolean | PerMessageDeflateOptions | PerMessageDeflateOptions[] | undefined,
): PerMessageDeflateOptions[] {
  if (option === undefined || option === false) return [];
  if (option === true) return [{}];
  return Array.isArray(option) ? option : [option];
}

export function readBody(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    res.on('data', (chunk: Buffer) => {
      if (length >= MAX_ERROR_BODY) return;
      chunks.push(chunk);
      length += chunk.length;
    });
    res.on('end', () => resolve(Buffer.concat(chunks).subarray(0, MAX_ERROR_BODY).toString('utf8')));
    res.on('error', reject);
    res.on('close', () => resolve(Buffer.concat(chunks).subarray(0, MAX_ERROR_BODY).toString('utf8')));
  });
}

/**
 * The TLS settings of a wss:// connection to `host`: only the fields given, the peer
 * verified by default, and SNI unless the host is an IP address (RFC 6066 §3).
 */
export function tlsSettings(tls: TlsOptions, host: string): TlsConnectionOptions {
  return {
    ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
    ...(tls.cert !== undefined ? { cert: tls.cert } : {}),
    ...(tls.key !== undefined ? { key: tls.key } : {}),
    ...(tls.pfx !== undefined ? { pfx: tls.pfx } : {}),
    ...(tls.passphrase !== undefined ? { passphrase: tls.passphrase } : {}),
    rejectUnauthorized: tls.rejectUnauthorized ?? true,
    checkServerIdentity,
    servername: tls.servername ?? (isIp(host) ? '' : host),
  };
}

function isIp(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}

/**
 * The compressor for the extensions the server agreed to, or undefined without
 * permessage-deflate. Throws (1010) for an extension that was not offered or an invalid
 * answer (RFC 7692 §7.1). The local settings (threshold, level, memLevel) are those of
 * the offer the server took.
 */
export function agreedCompressor(
  extensions: ExtensionOffer[],
  offers: PerMessageDeflateOptions[],
): MessageCompressor | undefined {
  const params = acceptResponse(extensions, offers);
  if (params === null) return undefined;
  const taken = offers.find((offer) => answers(extensions, offer)) ?? (offers[0] as PerMessageDeflateOptions);
  return createPerMessageDeflate(params, 'client', taken);
}
