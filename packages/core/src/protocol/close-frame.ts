import { isValidWireCloseCode } from './close-codes.js';
import { invalidPayload, protocolError } from './errors.js';
import { isValidUtf8 } from './utf8.js';

/** RFC 6455 §5.5: 125 bytes of control payload, 2 of them for the code. */
export const MAX_CLOSE_REASON_BYTES = 123;

/** Reads a received Close payload (RFC 6455 §5.5.1). Throws WebSocketError when invalid. */
export function parseClosePayload(payload: Buffer): { code: number; reason: string } {
  if (payload.length === 0) return { code: 1005, reason: '' }; // §7.1.5: no status code
  if (payload.length === 1) throw protocolError('Close frame with a 1-byte payload');
  const code = payload.readUInt16BE(0);
  if (!isValidWireCloseCode(code)) throw protocolError(`Invalid close code ${code}`);
  const reasonBytes = payload.subarray(2);
  if (!isValidUtf8(reasonBytes)) throw invalidPayload('Invalid UTF-8 in close reason');
  return { code, reason: reasonBytes.toString('utf8') };
}

/**
 * Builds a Close payload. `code` undefined sends an empty payload. Throws RangeError for
 * a code that may not be sent (1005, 1006, 1015, 0-999, unassigned) or a reason longer
 * than 123 bytes in UTF-8.
 */
export function buildClosePayload(code: number | undefined, reason = ''): Buffer {
  if (code === undefined) {
    if (reason !== '') throw new RangeError('A close reason needs a close code');
    return Buffer.alloc(0);
  }
  if (!isValidWireCloseCode(code)) throw new RangeError(`Close code ${code} may not be sent on the wire`);
  const length = Buffer.byteLength(reason);
  if (length > MAX_CLOSE_REASON_BYTES) {
    throw new RangeError(`Close reason is ${length} bytes; at most ${MAX_CLOSE_REASON_BYTES} fit`);
  }
  const out = Buffer.allocUnsafe(2 + length);
  out.writeUInt16BE(code, 0);
  out.write(reason, 2, 'utf8');
  return out;
}

/** Cuts a string to at most `maxBytes` of UTF-8 without splitting a character. */
export function truncateUtf8(text: string, maxBytes = MAX_CLOSE_REASON_BYTES): string {
  if (Buffer.byteLength(text) <= maxBytes) return text;
  let out = '';
  let bytes = 0;
  for (const ch of text) {
    const n = Buffer.byteLength(ch);
    if (bytes + n > maxBytes) break;
    out += ch;
    bytes += n;
  }
  return out;
}
