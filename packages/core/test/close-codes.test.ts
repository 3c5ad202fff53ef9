import { describe, expect, it } from 'vitest';
import {
  CloseCode,
  closeCodeToReason,
  describeCloseCode,
  isValidWireCloseCode,
  reasonToCloseCode,
} from '../src/protocol/close-codes.js';
import { buildClosePayload, parseClosePayload, truncateUtf8 } from '../src/protocol/close-frame.js';
import { WebSocketError } from '../src/protocol/errors.js';
import { CLOSE_CODE_TABLE } from './helpers.js';

describe('closeCodeToReason / reasonToCloseCode', () => {
  for (const [code, reason] of CLOSE_CODE_TABLE) {
    it(`${code} <-> ${reason}`, () => {
      expect(closeCodeToReason(code)).toBe(reason);
      expect(reasonToCloseCode(reason)).toBe(code);
      expect(describeCloseCode(code)).toBe(reason);
      expect(new WebSocketError(code, 'x').reason).toBe(reason);
    });
  }

  it('CloseCode constants agree with the table', () => {
    expect(Object.values(CloseCode).sort()).toEqual(CLOSE_CODE_TABLE.map(([c]) => c).sort());
  });

  for (const code of [0, 999, 1004, 1016, 2999, 3000, 4000, 4999, 5000, 1000.5, Number.NaN]) {
    it(`closeCodeToReason(${code}) throws`, () => {
      expect(() => closeCodeToReason(code)).toThrow(RangeError);
    });
  }

  for (const reason of [
    '',
    'normal',
    'Normal-Closure',
    'message_too_big',
    'application',
    'unknown',
    '1000',
  ]) {
    it(`reasonToCloseCode('${reason}') throws`, () => {
      expect(() => reasonToCloseCode(reason)).toThrow(RangeError);
    });
  }

  it('describeCloseCode never throws: application codes and unknown ones', () => {
    expect(describeCloseCode(3000)).toBe('application');
    expect(describeCloseCode(4999)).toBe('application');
    expect(describeCloseCode(2999)).toBe('unknown');
    expect(describeCloseCode(5000)).toBe('unknown');
    expect(describeCloseCode(1004)).toBe('unknown');
  });
});

describe('isValidWireCloseCode', () => {
  const expected = (code: number) =>
    (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);

  it('matches RFC 6455 §7.4 for every 16-bit code', () => {
    const wrong: number[] = [];
    for (let code = 0; code <= 0xffff; code++)
      if (isValidWireCloseCode(code) !== expected(code)) wrong.push(code);
    expect(wrong).toEqual([]);
  });

  const table: [number, boolean][] = [
    [0, false],
    [999, false],
    [1000, true],
    [1001, true],
    [1002, true],
    [1003, true],
    [1004, false],
    [1005, false],
    [1006, false],
    [1007, true],
    [1011, true],
    [1014, true],
    [1015, false],
    [1016, false],
    [2999, false],
    [3000, true],
    [4999, true],
    [5000, false],
    [65535, false],
    [1000.5, false],
    [Number.NaN, false],
    [-1000, false],
  ];
  for (const [code, ok] of table) {
    it(`${code} -> ${ok}`, () => expect(isValidWireCloseCode(code)).toBe(ok));
  }
});

describe('Close payloads', () => {
  it('parses an empty payload as 1005 with no reason', () => {
    expect(parseClosePayload(Buffer.alloc(0))).toEqual({ code: 1005, reason: '' });
  });

  it('rejects a 1-byte payload with 1002', () => {
    const e = catchError(() => parseClosePayload(Buffer.from([0x03])));
    expect(e.code).toBe(1002);
  });

  for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535]) {
    it(`rejects received code ${code} with 1002`, () => {
      const payload = Buffer.alloc(2);
      payload.writeUInt16BE(code);
      expect(catchError(() => parseClosePayload(payload)).code).toBe(1002);
    });
  }

  for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999]) {
    it(`accepts received code ${code} and round-trips it with a reason`, () => {
      const payload = buildClosePayload(code, 'bye ✓');
      expect(payload.readUInt16BE(0)).toBe(code);
      expect(parseClosePayload(payload)).toEqual({ code, reason: 'bye ✓' });
    });
  }

  it('rejects a reason with invalid UTF-8 with 1007', () => {
    expect(catchError(() => parseClosePayload(Buffer.from([0x03, 0xe8, 0x41, 0xc0, 0x80]))).code).toBe(1007);
    expect(catchError(() => parseClosePayload(Buffer.from([0x03, 0xe8, 0xe2, 0x82]))).code).toBe(1007);
  });

  it('builds: no code -> empty, invalid codes and long reasons -> RangeError', () => {
    expect(buildClosePayload(undefined)).toHaveLength(0);
    expect(() => buildClosePayload(undefined, 'reason')).toThrow(RangeError);
    for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000]) {
      expect(() => buildClosePayload(code)).toThrow(RangeError);
    }
    expect(buildClosePayload(1000, 'a'.repeat(123))).toHaveLength(125);
    expect(() => buildClosePayload(1000, 'a'.repeat(124))).toThrow(RangeError);
    // Bytes, not characters: 41 three-byte characters = 123 bytes; 42 = 126.
    expect(buildClosePayload(1000, '€'.repeat(41))).toHaveLength(125);
    expect(() => buildClosePayload(1000, '€'.repeat(42))).toThrow(RangeError);
  });

  it('truncateUtf8 never splits a character and respects the byte budget', () => {
    expect(truncateUtf8('abc', 10)).toBe('abc');
    expect(truncateUtf8('€€€', 7)).toBe('€€');
    expect(truncateUtf8('a😀b', 4)).toBe('a');
    const long = '😀é'.repeat(100);
    const t = truncateUtf8(long);
    expect(Buffer.byteLength(t)).toBeLessThanOrEqual(123);
    expect(Buffer.byteLength(t)).toBeGreaterThan(118);
    expect(long.startsWith(t)).toBe(true);
  });
});

function catchError(fn: () => unknown): WebSocketError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(WebSocketError);
    return e as WebSocketError;
  }
  throw new Error('expected a WebSocketError');
}
