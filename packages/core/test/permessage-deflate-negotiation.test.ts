import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { WebSocketError } from '../src/protocol/errors.js';
import { formatExtensions, parseExtensions } from '../src/protocol/extensions.js';
import {
  acceptResponse,
  buildOffers,
  DEFAULT_THRESHOLD,
  type DeflateParams,
  negotiate,
  type PerMessageDeflateOptions,
  resolveThreshold,
  sideParams,
  validateDeflateOptions,
} from '../src/protocol/permessage-deflate.js';

const DEFAULTS: DeflateParams = {
  serverNoContextTakeover: false,
  clientNoContextTakeover: false,
  serverMaxWindowBits: 15,
  clientMaxWindowBits: 15,
};

/** Server side: negotiate from a header string; returns the response header and params. */
function serve(header: string, options: PerMessageDeflateOptions = {}) {
  const result = negotiate(parseExtensions(header), options);
  return result === null ? null : { header: formatExtensions([result.response]), params: result.params };
}

/** Client side: check a response header against the options that were offered. */
function accept(header: string, offered: PerMessageDeflateOptions[]) {
  return acceptResponse(parseExtensions(header), offered);
}

function clientFailure(header: string, offered: PerMessageDeflateOptions[]): WebSocketError {
  try {
    accept(header, offered);
  } catch (error) {
    expect(error).toBeInstanceOf(WebSocketError);
    const e = error as WebSocketError;
    expect(e.code).toBe(1010);
    expect(e.reason).toBe('mandatory-ext');
    return e;
  }
  throw new Error(`expected ${JSON.stringify(header)} to be refused`);
}

describe('options', () => {
  it('documents a 1024-byte default threshold', () => {
    expect(DEFAULT_THRESHOLD).toBe(1024);
    expect(resolveThreshold({})).toBe(1024);
    expect(resolveThreshold({ threshold: 0 })).toBe(0);
  });

  it('accepts window bits 8..15', () => {
    for (let bits = 8; bits <= 15; bits++) {
      expect(() =>
        validateDeflateOptions({ serverMaxWindowBits: bits, clientMaxWindowBits: bits }),
      ).not.toThrow();
    }
    expect(() => validateDeflateOptions({ clientMaxWindowBits: true })).not.toThrow();
  });

  it('rejects other window bits with RangeError', () => {
    for (const bits of [7, 16, 0, -1, 9.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => validateDeflateOptions({ serverMaxWindowBits: bits }), String(bits)).toThrow(RangeError);
      expect(() => validateDeflateOptions({ clientMaxWindowBits: bits }), String(bits)).toThrow(RangeError);
    }
    expect(() => validateDeflateOptions({ serverMaxWindowBits: '10' as unknown as number })).toThrow(
      RangeError,
    );
  });

  it("accepts, on either side, a window of 8 even for the side's own compressor", () => {
    // A side whose own window is 8 bits runs zlib at 9 bits (whose matches stay within
    // 250 bytes, inside an 8-bit window); see sideParams below.
    for (const side of ['server', 'client'] as const) {
      expect(() => validateDeflateOptions({ serverMaxWindowBits: 8 }, side), side).not.toThrow();
      expect(() => validateDeflateOptions({ clientMaxWindowBits: 8 }, side), side).not.toThrow();
      expect(() =>
        validateDeflateOptions({ serverMaxWindowBits: 8, clientMaxWindowBits: 8 }, side),
      ).not.toThrow();
      // ...while the range is still enforced per side.
      for (const bits of [7, 16]) {
        expect(() => validateDeflateOptions({ serverMaxWindowBits: bits }, side)).toThrow(RangeError);
        expect(() => validateDeflateOptions({ clientMaxWindowBits: bits }, side)).toThrow(RangeError);
      }
    }
  });

  it('rejects a bad threshold, level or memLevel', () => {
    expect(() => validateDeflateOptions({ threshold: -1 })).toThrow(RangeError);
    expect(() => validateDeflateOptions({ threshold: Number.NaN })).toThrow(RangeError);
    expect(() => validateDeflateOptions({ level: 10 })).toThrow(RangeError);
    expect(() => validateDeflateOptions({ level: -2 })).toThrow(RangeError);
    expect(() => validateDeflateOptions({ memLevel: 0 })).toThrow(RangeError);
    expect(() => validateDeflateOptions({ memLevel: 10 })).toThrow(RangeError);
    expect(() => validateDeflateOptions({ level: -1, memLevel: 9, threshold: 0 })).not.toThrow();
  });

  it('rejects non-boolean no_context_takeover options', () => {
    expect(() => validateDeflateOptions({ serverNoContextTakeover: 'yes' as unknown as boolean })).toThrow(
      TypeError,
    );
  });
});

describe('server: negotiate', () => {
  it('accepts the simplest offer (RFC 7692 §7.1 example)', () => {
    expect(serve('permessage-deflate')).toEqual({ header: 'permessage-deflate', params: DEFAULTS });
  });

  it('returns null without a permessage-deflate offer', () => {
    expect(serve('')).toBeNull();
    expect(serve('x-webkit-deflate-frame')).toBeNull();
    expect(serve('deflate-frame, x-custom; a=1')).toBeNull();
  });

  it('ignores other extensions around the offer', () => {
    expect(serve('x-webkit-deflate-frame, permessage-deflate, x-other')?.header).toBe('permessage-deflate');
  });

  it('recognises the extension name case-insensitively', () => {
    expect(serve('PerMessage-Deflate; Server_No_Context_Takeover')?.header).toBe(
      'permessage-deflate; server_no_context_takeover',
    );
  });

  it('answers the RFC 7692 §7.1 offer with a server window limit', () => {
    // "permessage-deflate; client_max_window_bits; server_max_window_bits=10": accepted with
    // server_max_window_bits=10; client_max_window_bits is only supported, not required.
    expect(serve('permessage-deflate; client_max_window_bits; server_max_window_bits=10')).toEqual({
      header: 'permessage-deflate; server_max_window_bits=10',
      params: { ...DEFAULTS, serverMaxWindowBits: 10 },
    });
  });

  it('takes the fallback offer of RFC 7692 §7.1 when the first is declined', () => {
    // The RFC's example pair, with a first offer the server must decline: a parameter
    // repeated (RFC 7692 §7.1: an offer with a duplicate parameter is declined).
    const first = 'permessage-deflate; client_max_window_bits; server_max_window_bits=10';
    const fallback = 'permessage-deflate; client_max_window_bits';
    expect(serve(`${first}; server_max_window_bits=10, ${fallback}`)).toEqual({
      header: 'permessage-deflate',
      params: DEFAULTS,
    });
    // An unknown parameter is declined the same way.
    expect(serve(`${first}; x_unknown, ${fallback}`)?.header).toBe('permessage-deflate');
    // ...and the first one is taken when it is acceptable, including with a window of 8
    // (which no longer makes the server fall back).
    expect(serve(`${first}, ${fallback}`)?.header).toBe('permessage-deflate; server_max_window_bits=10');
    expect(serve(`${first.replace('=10', '=8')}, ${fallback}`)).toEqual({
      header: 'permessage-deflate; server_max_window_bits=8',
      params: { ...DEFAULTS, serverMaxWindowBits: 8 },
    });
  });

  describe('server_no_context_takeover', () => {
    it('is echoed when offered', () => {
      expect(serve('permessage-deflate; server_no_context_takeover')).toEqual({
        header: 'permessage-deflate; server_no_context_takeover',
        params: { ...DEFAULTS, serverNoContextTakeover: true },
      });
    });

    it('is added when configured, even if not offered', () => {
      expect(serve('permessage-deflate', { serverNoContextTakeover: true })).toEqual({
        header: 'permessage-deflate; server_no_context_takeover',
        params: { ...DEFAULTS, serverNoContextTakeover: true },
      });
    });
  });

  describe('client_no_context_takeover', () => {
    it('is added when configured, even if not offered', () => {
      expect(serve('permessage-deflate', { clientNoContextTakeover: true })).toEqual({
        header: 'permessage-deflate; client_no_context_takeover',
        params: { ...DEFAULTS, clientNoContextTakeover: true },
      });
    });

    it("is not relied upon when only the client's hint has it", () => {
      expect(serve('permessage-deflate; client_no_context_takeover')).toEqual({
        header: 'permessage-deflate',
        params: DEFAULTS,
      });
    });
  });

  describe('server_max_window_bits', () => {
    it('uses the smaller of the offered value and the configured limit', () => {
      expect(
        serve('permessage-deflate; server_max_window_bits=12', { serverMaxWindowBits: 10 })?.params,
      ).toEqual({
        ...DEFAULTS,
        serverMaxWindowBits: 10,
      });
      expect(
        serve('permessage-deflate; server_max_window_bits=10', { serverMaxWindowBits: 12 })?.header,
      ).toBe('permessage-deflate; server_max_window_bits=10');
      expect(serve('permessage-deflate; server_max_window_bits=9')?.header).toBe(
        'permessage-deflate; server_max_window_bits=9',
      );
      expect(serve('permessage-deflate; server_max_window_bits=15')?.header).toBe(
        'permessage-deflate; server_max_window_bits=15',
      );
    });

    it('announces a configured limit even when the client asked for none', () => {
      expect(serve('permessage-deflate', { serverMaxWindowBits: 11 })).toEqual({
        header: 'permessage-deflate; server_max_window_bits=11',
        params: { ...DEFAULTS, serverMaxWindowBits: 11 },
      });
    });

    it('accepts a quoted value', () => {
      expect(serve('permessage-deflate; server_max_window_bits="10"')?.params.serverMaxWindowBits).toBe(10);
    });

    it('accepts an offer that forces a window of 8 bits (the server then compresses with zlib at 9)', () => {
      const eight = {
        header: 'permessage-deflate; server_max_window_bits=8',
        params: { ...DEFAULTS, serverMaxWindowBits: 8 },
      };
      expect(serve('permessage-deflate; server_max_window_bits=8')).toEqual(eight);
      // The first offer is taken: no fallback to a later one.
      expect(serve('permessage-deflate; server_max_window_bits=8, permessage-deflate')).toEqual(eight);
      // A configured limit of 8 is announced, and wins over a larger request.
      expect(serve('permessage-deflate', { serverMaxWindowBits: 8 })).toEqual(eight);
      expect(serve('permessage-deflate; server_max_window_bits=12', { serverMaxWindowBits: 8 })).toEqual(
        eight,
      );
      expect(serve('permessage-deflate; server_max_window_bits=8', { serverMaxWindowBits: 12 })).toEqual(
        eight,
      );
    });
  });

  describe('client_max_window_bits', () => {
    it('is never sent when not offered, whatever the configuration', () => {
      expect(serve('permessage-deflate', { clientMaxWindowBits: 10 })).toEqual({
        header: 'permessage-deflate',
        params: DEFAULTS,
      });
    });

    it('uses the configured value when offered without a value', () => {
      expect(serve('permessage-deflate; client_max_window_bits', { clientMaxWindowBits: 10 })).toEqual({
        header: 'permessage-deflate; client_max_window_bits=10',
        params: { ...DEFAULTS, clientMaxWindowBits: 10 },
      });
    });

    it('uses the smaller of the configured and offered values', () => {
      expect(
        serve('permessage-deflate; client_max_window_bits=12', { clientMaxWindowBits: 10 })?.header,
      ).toBe('permessage-deflate; client_max_window_bits=10');
      expect(serve('permessage-deflate; client_max_window_bits=9', { clientMaxWindowBits: 10 })?.header).toBe(
        'permessage-deflate; client_max_window_bits=9',
      );
    });

    it("confirms the client's own value when not configured", () => {
      expect(serve('permessage-deflate; client_max_window_bits=12')).toEqual({
        header: 'permessage-deflate; client_max_window_bits=12',
        params: { ...DEFAULTS, clientMaxWindowBits: 12 },
      });
      expect(serve('permessage-deflate; client_max_window_bits')).toEqual({
        header: 'permessage-deflate',
        params: DEFAULTS,
      });
      expect(serve('permessage-deflate; client_max_window_bits', { clientMaxWindowBits: true })?.header).toBe(
        'permessage-deflate',
      );
    });
  });

  it('combines every parameter in a fixed order', () => {
    expect(
      serve(
        'permessage-deflate; client_max_window_bits; server_max_window_bits=12; server_no_context_takeover; client_no_context_takeover',
        { clientNoContextTakeover: true, clientMaxWindowBits: 11, serverMaxWindowBits: 13 },
      ),
    ).toEqual({
      header:
        'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12; client_max_window_bits=11',
      params: {
        serverNoContextTakeover: true,
        clientNoContextTakeover: true,
        serverMaxWindowBits: 12,
        clientMaxWindowBits: 11,
      },
    });
  });

  describe('declines offers with bad parameters (RFC 7692 §7.1)', () => {
    const bad = [
      'permessage-deflate; mux',
      'permessage-deflate; x_max_window_bits=10',
      'permessage-deflate; server_no_context_takeover; server_no_context_takeover',
      'permessage-deflate; client_no_context_takeover; Client_No_Context_Takeover',
      'permessage-deflate; server_max_window_bits=10; server_max_window_bits=10',
      'permessage-deflate; client_max_window_bits; client_max_window_bits=10',
      'permessage-deflate; server_max_window_bits',
      'permessage-deflate; server_max_window_bits=7',
      'permessage-deflate; server_max_window_bits=16',
      'permessage-deflate; server_max_window_bits=010',
      'permessage-deflate; server_max_window_bits=+9',
      'permessage-deflate; server_max_window_bits=9.0',
      'permessage-deflate; server_max_window_bits=0x9',
      'permessage-deflate; server_max_window_bits=ten',
      'permessage-deflate; client_max_window_bits=7',
      'permessage-deflate; client_max_window_bits=16',
      'permessage-deflate; client_max_window_bits=08',
      'permessage-deflate; client_max_window_bits=-10',
      'permessage-deflate; server_no_context_takeover=1',
      'permessage-deflate; client_no_context_takeover=true',
    ];
    for (const header of bad) {
      it(header, () => {
        expect(serve(header)).toBeNull();
        // A following valid offer is still accepted.
        expect(serve(`${header}, permessage-deflate; server_no_context_takeover`)?.header).toBe(
          'permessage-deflate; server_no_context_takeover',
        );
      });
    }
  });

  it('throws RangeError on invalid options', () => {
    expect(() => negotiate(parseExtensions('permessage-deflate'), { serverMaxWindowBits: 16 })).toThrow(
      RangeError,
    );
    expect(() => negotiate([], { clientMaxWindowBits: 7 })).toThrow(RangeError);
  });
});

describe('client: buildOffers', () => {
  it('formats a list of offers in order', () => {
    expect(formatExtensions(buildOffers([{ serverMaxWindowBits: 10 }, {}]))).toBe(
      'permessage-deflate; server_max_window_bits=10; client_max_window_bits, permessage-deflate; client_max_window_bits',
    );
  });

  it('accepts a single options object', () => {
    expect(formatExtensions(buildOffers({}))).toBe('permessage-deflate; client_max_window_bits');
  });

  it('offers client_max_window_bits without a value by default; false leaves it out', () => {
    expect(formatExtensions(buildOffers({}))).toBe('permessage-deflate; client_max_window_bits');
    expect(formatExtensions(buildOffers({ clientMaxWindowBits: false }))).toBe('permessage-deflate');
    expect(formatExtensions(buildOffers([{ clientMaxWindowBits: false }, {}]))).toBe(
      'permessage-deflate, permessage-deflate; client_max_window_bits',
    );
  });

  it('offers client_max_window_bits with or without a value', () => {
    expect(formatExtensions(buildOffers({ clientMaxWindowBits: true }))).toBe(
      'permessage-deflate; client_max_window_bits',
    );
    expect(formatExtensions(buildOffers({ clientMaxWindowBits: 12 }))).toBe(
      'permessage-deflate; client_max_window_bits=12',
    );
  });

  it('offers every parameter', () => {
    expect(
      formatExtensions(
        buildOffers({
          serverNoContextTakeover: true,
          clientNoContextTakeover: true,
          serverMaxWindowBits: 9,
          clientMaxWindowBits: 10,
          threshold: 0,
          level: 9,
          memLevel: 8,
        }),
      ),
    ).toBe(
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9; client_max_window_bits=10',
    );
  });

  it('omits parameters set to false', () => {
    expect(
      formatExtensions(
        buildOffers({
          serverNoContextTakeover: false,
          clientNoContextTakeover: false,
          clientMaxWindowBits: false,
        }),
      ),
    ).toBe('permessage-deflate');
  });

  it('validates every offer', () => {
    expect(() => buildOffers([{}, { serverMaxWindowBits: 16 }])).toThrow(RangeError);
    expect(() => buildOffers([{}, { clientMaxWindowBits: 7 }])).toThrow(RangeError);
    expect(() => buildOffers({ clientMaxWindowBits: 16 })).toThrow(RangeError);
    expect(() => buildOffers({ serverMaxWindowBits: 7 })).toThrow(RangeError);
    expect(() => buildOffers({ clientMaxWindowBits: 'x' as unknown as number })).toThrow(RangeError);
    // 8 is a valid window for either parameter, our own (client) one included.
    expect(formatExtensions(buildOffers({ serverMaxWindowBits: 8 }))).toBe(
      'permessage-deflate; server_max_window_bits=8; client_max_window_bits',
    );
    expect(formatExtensions(buildOffers([{ clientMaxWindowBits: 8 }, { clientMaxWindowBits: false }]))).toBe(
      'permessage-deflate; client_max_window_bits=8, permessage-deflate',
    );
  });
});

describe('client: acceptResponse', () => {
  it('returns null when the server accepted no extension', () => {
    expect(accept('', [{}])).toBeNull();
    expect(accept('', [])).toBeNull();
  });

  it('accepts a plain answer to a plain offer', () => {
    expect(accept('permessage-deflate', [{}])).toEqual(DEFAULTS);
  });

  it('fails on an extension that was not offered', () => {
    expect(clientFailure('x-webkit-deflate-frame', [{}]).message).toMatch(/x-webkit-deflate-frame/);
    expect(clientFailure('permessage-deflate, x-other', [{}]).message).toMatch(/x-other/);
    expect(clientFailure('permessage-deflate', []).message).toMatch(/not offered/);
  });

  it('fails when permessage-deflate is accepted twice', () => {
    expect(clientFailure('permessage-deflate, permessage-deflate', [{}, {}]).message).toMatch(
      /more than once/,
    );
  });

  describe('fails on invalid parameters', () => {
    const cases: [string, RegExp][] = [
      ['permessage-deflate; mux', /unknown parameter mux/],
      ['permessage-deflate; server_no_context_takeover; server_no_context_takeover', /more than once/],
      ['permessage-deflate; server_max_window_bits=10; Server_Max_Window_Bits=10', /more than once/],
      ['permessage-deflate; server_max_window_bits', /needs a value/],
      ['permessage-deflate; client_max_window_bits', /needs a value in a response/],
      ['permessage-deflate; server_max_window_bits=16', /invalid value "16"/],
      ['permessage-deflate; server_max_window_bits=7', /invalid value "7"/],
      ['permessage-deflate; server_max_window_bits=09', /invalid value "09"/],
      ['permessage-deflate; client_max_window_bits=99', /invalid value "99"/],
      ['permessage-deflate; server_no_context_takeover=1', /must not have a value/],
      ['permessage-deflate; client_no_context_takeover=x', /must not have a value/],
    ];
    for (const [header, message] of cases) {
      it(header, () => {
        expect(clientFailure(header, [{ clientMaxWindowBits: true }]).message).toMatch(message);
      });
    }
  });

  it('accepts server_no_context_takeover and client_no_context_takeover the client did not ask for', () => {
    expect(
      accept('permessage-deflate; server_no_context_takeover; client_no_context_takeover', [{}]),
    ).toEqual({
      ...DEFAULTS,
      serverNoContextTakeover: true,
      clientNoContextTakeover: true,
    });
  });

  it('applies its own client_no_context_takeover declaration', () => {
    expect(accept('permessage-deflate', [{ clientNoContextTakeover: true }])).toEqual({
      ...DEFAULTS,
      clientNoContextTakeover: true,
    });
  });

  it('fails when a requested server_no_context_takeover is not confirmed', () => {
    expect(clientFailure('permessage-deflate', [{ serverNoContextTakeover: true }]).message).toMatch(
      /server_no_context_takeover was requested/,
    );
  });

  describe('server_max_window_bits', () => {
    it('accepts the requested value or a smaller one', () => {
      expect(accept('permessage-deflate; server_max_window_bits=10', [{ serverMaxWindowBits: 10 }])).toEqual({
        ...DEFAULTS,
        serverMaxWindowBits: 10,
      });
      expect(
        accept('permessage-deflate; server_max_window_bits=9', [{ serverMaxWindowBits: 10 }])
          ?.serverMaxWindowBits,
      ).toBe(9);
    });

    it('fails on a value larger than requested', () => {
      expect(
        clientFailure('permessage-deflate; server_max_window_bits=11', [{ serverMaxWindowBits: 10 }]).message,
      ).toMatch(/larger than the requested 10/);
    });

    it('fails when the requested limit is not confirmed', () => {
      expect(clientFailure('permessage-deflate', [{ serverMaxWindowBits: 10 }]).message).toMatch(
        /not confirmed/,
      );
    });

    it('accepts any valid value when none was requested, including 8', () => {
      expect(accept('permessage-deflate; server_max_window_bits=12', [{}])?.serverMaxWindowBits).toBe(12);
      expect(accept('permessage-deflate; server_max_window_bits=8', [{}])?.serverMaxWindowBits).toBe(8);
    });
  });

  describe('client_max_window_bits', () => {
    it('fails when no offer had it', () => {
      const without = { clientMaxWindowBits: false } as const;
      expect(clientFailure('permessage-deflate; client_max_window_bits=10', [without]).message).toMatch(
        /not offered/,
      );
      expect(
        clientFailure('permessage-deflate; client_max_window_bits=10', [
          without,
          { ...without, serverNoContextTakeover: true },
        ]).message,
      ).toMatch(/offer 1: client_max_window_bits was not offered; offer 2:/);
    });

    it('accepts a limit when the offer had the parameter without a value', () => {
      expect(
        accept('permessage-deflate; client_max_window_bits=10', [{ clientMaxWindowBits: true }]),
      ).toEqual({
        ...DEFAULTS,
        clientMaxWindowBits: 10,
      });
    });

    it('accepts any limit 8..15, with or without client_no_context_takeover, for the default offer', () => {
      for (let bits = 8; bits <= 15; bits++) {
        for (const nct of [false, true]) {
          const answer = `permessage-deflate${nct ? '; client_no_context_takeover' : ''}; client_max_window_bits=${bits}`;
          expect(accept(answer, [{}])).toEqual({
            ...DEFAULTS,
            clientNoContextTakeover: nct,
            clientMaxWindowBits: bits,
          });
        }
      }
    });

    it('accepts a limit not larger than the offered value', () => {
      expect(
        accept('permessage-deflate; client_max_window_bits=10', [{ clientMaxWindowBits: 12 }])
          ?.clientMaxWindowBits,
      ).toBe(10);
      expect(
        clientFailure('permessage-deflate; client_max_window_bits=13', [{ clientMaxWindowBits: 12 }]).message,
      ).toMatch(/larger than the offered 12/);
    });

    it('keeps its own declared limit when the server sets none', () => {
      expect(accept('permessage-deflate', [{ clientMaxWindowBits: 11 }])).toEqual({
        ...DEFAULTS,
        clientMaxWindowBits: 11,
      });
    });

    it('accepts client_max_window_bits=8 (our client then compresses with zlib at 9)', () => {
      expect(accept('permessage-deflate; client_max_window_bits=8', [{ clientMaxWindowBits: true }])).toEqual(
        { ...DEFAULTS, clientMaxWindowBits: 8 },
      );
      expect(
        accept('permessage-deflate; client_max_window_bits=8', [{ clientMaxWindowBits: 10 }])
          ?.clientMaxWindowBits,
      ).toBe(8);
      // Our own declared limit of 8 holds when the server sets none or confirms it...
      expect(accept('permessage-deflate', [{ clientMaxWindowBits: 8 }])).toEqual({
        ...DEFAULTS,
        clientMaxWindowBits: 8,
      });
      expect(
        accept('permessage-deflate; client_max_window_bits=8', [{ clientMaxWindowBits: 8 }])
          ?.clientMaxWindowBits,
      ).toBe(8);
      // ...and a larger answer is still refused.
      expect(
        clientFailure('permessage-deflate; client_max_window_bits=9', [{ clientMaxWindowBits: 8 }]).message,
      ).toMatch(/larger than the offered 8/);
    });
  });

  describe('several offers', () => {
    const offered: PerMessageDeflateOptions[] = [{ serverMaxWindowBits: 10, clientMaxWindowBits: true }, {}];

    it('matches the first offer when the response is compatible with it (RFC 7692 §7.1 example)', () => {
      expect(accept('permessage-deflate; server_max_window_bits=10', offered)).toEqual({
        ...DEFAULTS,
        serverMaxWindowBits: 10,
      });
      expect(
        accept('permessage-deflate; server_max_window_bits=10; client_max_window_bits=9', offered),
      ).toEqual({
        ...DEFAULTS,
        serverMaxWindowBits: 10,
        clientMaxWindowBits: 9,
      });
    });

    it('falls back to the later offer the response fits (RFC 7692 §7.1 example)', () => {
      expect(accept('permessage-deflate', offered)).toEqual(DEFAULTS);
      // Too large for the first offer, fine for the second, which set no limit.
      expect(accept('permessage-deflate; server_max_window_bits=12', offered)).toEqual({
        ...DEFAULTS,
        serverMaxWindowBits: 12,
      });
    });

    it('uses the matched offer for its own declarations', () => {
      const mine: PerMessageDeflateOptions[] = [
        { serverNoContextTakeover: true, clientNoContextTakeover: true },
        { clientMaxWindowBits: 11 },
      ];
      expect(accept('permessage-deflate; server_no_context_takeover', mine)).toEqual({
        ...DEFAULTS,
        serverNoContextTakeover: true,
        clientNoContextTakeover: true,
      });
      expect(accept('permessage-deflate', mine)).toEqual({ ...DEFAULTS, clientMaxWindowBits: 11 });
    });

    it('fails when the response fits none of them', () => {
      const error = clientFailure('permessage-deflate; client_max_window_bits=10', [
        { serverMaxWindowBits: 10 },
        { serverNoContextTakeover: true },
      ]);
      expect(error.message).toMatch(/does not match any offer/);
    });
  });
});

describe('sideParams', () => {
  const params: DeflateParams = {
    serverNoContextTakeover: true,
    clientNoContextTakeover: false,
    serverMaxWindowBits: 10,
    clientMaxWindowBits: 12,
  };

  it('gives the server its own parameters for deflate and the client ones for inflate', () => {
    expect(sideParams(params, 'server')).toEqual({
      deflateWindowBits: 10,
      inflateWindowBits: 12,
      deflateNoContextTakeover: true,
      inflateNoContextTakeover: false,
    });
  });

  it('gives the client the mirror image', () => {
    expect(sideParams(params, 'client')).toEqual({
      deflateWindowBits: 12,
      inflateWindowBits: 10,
      deflateNoContextTakeover: false,
      inflateNoContextTakeover: true,
    });
  });

  it('inflates an 8-bit window with 9 bits', () => {
    expect(sideParams({ ...DEFAULTS, serverMaxWindowBits: 8 }, 'client').inflateWindowBits).toBe(9);
    expect(sideParams({ ...DEFAULTS, clientMaxWindowBits: 8 }, 'server').inflateWindowBits).toBe(9);
  });

  it('runs an 8-bit window of its own as zlib windowBits 9, with no flag to stop compressing', () => {
    // zlib has no raw 8-bit deflate; at 9 bits its matches reach at most 250 bytes back
    // (MAX_DIST in zlib's deflate.h), inside the agreed 256-byte window, so the side
    // compresses normally. The result has exactly these four fields (no canDeflate).
    const server8 = { ...params, serverMaxWindowBits: 8 };
    expect(sideParams(server8, 'server')).toStrictEqual({
      deflateWindowBits: 9,
      inflateWindowBits: 12,
      deflateNoContextTakeover: true,
      inflateNoContextTakeover: false,
    });
    // The peer of that side inflates the 8-bit stream with 9 bits.
    expect(sideParams(server8, 'client')).toStrictEqual({
      deflateWindowBits: 12,
      inflateWindowBits: 9,
      deflateNoContextTakeover: false,
      inflateNoContextTakeover: true,
    });
    const client8 = { ...params, clientMaxWindowBits: 8 };
    expect(sideParams(client8, 'client')).toStrictEqual({
      deflateWindowBits: 9,
      inflateWindowBits: 10,
      deflateNoContextTakeover: false,
      inflateNoContextTakeover: true,
    });
    expect(sideParams(client8, 'server')).toStrictEqual({
      deflateWindowBits: 10,
      inflateWindowBits: 9,
      deflateNoContextTakeover: true,
      inflateNoContextTakeover: false,
    });
    // Both windows 8: both sides run zlib at 9 bits both ways.
    const both = { ...DEFAULTS, serverMaxWindowBits: 8, clientMaxWindowBits: 8 };
    for (const side of ['server', 'client'] as const) {
      expect(sideParams(both, side), side).toStrictEqual({
        deflateWindowBits: 9,
        inflateWindowBits: 9,
        deflateNoContextTakeover: false,
        inflateNoContextTakeover: false,
      });
    }
  });

  it('deflates and inflates with the agreed window from 9 to 15', () => {
    for (let bits = 9; bits <= 15; bits++) {
      const p = { ...DEFAULTS, serverMaxWindowBits: bits, clientMaxWindowBits: bits };
      for (const side of ['server', 'client'] as const) {
        expect(sideParams(p, side), `${side} ${bits}`).toStrictEqual({
          deflateWindowBits: bits,
          inflateWindowBits: bits,
          deflateNoContextTakeover: false,
          inflateNoContextTakeover: false,
        });
      }
    }
  });
});

describe('negotiation properties', () => {
  /** Every field of SideParams: there is no flag that stops a side from compressing. */
  const SIDE_KEYS = [
    'deflateNoContextTakeover',
    'deflateWindowBits',
    'inflateNoContextTakeover',
    'inflateWindowBits',
  ];
  // Every window RFC 7692 allows, 8 included: a side whose own window is 8 runs zlib at 9
  // bits (matches within 250 bytes) and compresses like any other.
  const bits = fc.integer({ min: 8, max: 15 });
  const clientOptions = fc.record(
    {
      serverNoContextTakeover: fc.boolean(),
      clientNoContextTakeover: fc.boolean(),
      serverMaxWindowBits: bits,
      clientMaxWindowBits: fc.oneof(fc.constant(true as const), bits),
    },
    { requiredKeys: [] },
  );
  const serverOptions = fc.record(
    {
      serverNoContextTakeover: fc.boolean(),
      clientNoContextTakeover: fc.boolean(),
      serverMaxWindowBits: bits,
      clientMaxWindowBits: bits,
    },
    { requiredKeys: [] },
  );

  it('our client accepts what our server answers, and both agree', () => {
    fc.assert(
      fc.property(
        fc.array(clientOptions, { minLength: 1, maxLength: 4 }),
        serverOptions,
        (offered, server) => {
          const header = formatExtensions(buildOffers(offered));
          const result = negotiate(parseExtensions(header), server);
          // Our client only makes valid offers, and the server declines only invalid ones.
          expect(result).not.toBeNull();
          const client = acceptResponse(parseExtensions(formatExtensions([result!.response])), offered);
          expect(client).not.toBeNull();
          const s = result!.params;
          const c = client!;
          expect(c.serverNoContextTakeover).toBe(s.serverNoContextTakeover);
          expect(c.serverMaxWindowBits).toBe(s.serverMaxWindowBits);
          // The client compresses with at most what the server's decompressor expects...
          expect(c.clientMaxWindowBits).toBeLessThanOrEqual(s.clientMaxWindowBits);
          // ...and resets its context whenever the server relies on that.
          if (s.clientNoContextTakeover) expect(c.clientNoContextTakeover).toBe(true);
          const serverSide = sideParams(s, 'server');
          const clientSide = sideParams(c, 'client');
          // Each side always compresses (no opt-out field), with its agreed window, 8 run as 9...
          for (const side of [serverSide, clientSide]) expect(Object.keys(side).sort()).toEqual(SIDE_KEYS);
          expect(serverSide.deflateWindowBits).toBe(Math.max(9, s.serverMaxWindowBits));
          expect(clientSide.deflateWindowBits).toBe(Math.max(9, c.clientMaxWindowBits));
          // ...and its peer inflates with at least that window (an 8 also as 9).
          expect(clientSide.inflateWindowBits).toBe(Math.max(9, s.serverMaxWindowBits));
          expect(serverSide.inflateWindowBits).toBe(Math.max(9, s.clientMaxWindowBits));
          expect(clientSide.inflateWindowBits).toBeGreaterThanOrEqual(serverSide.deflateWindowBits);
          expect(serverSide.inflateWindowBits).toBeGreaterThanOrEqual(clientSide.deflateWindowBits);
          // Every zlib stream either side opens has a window zlib supports (9..15).
          for (const side of [serverSide, clientSide]) {
            expect(side.inflateWindowBits).toBeGreaterThanOrEqual(9);
            expect(side.deflateWindowBits).toBeGreaterThanOrEqual(9);
          }
          // The server never compresses with a larger window than it is configured for.
          expect(s.serverMaxWindowBits).toBeLessThanOrEqual(server.serverMaxWindowBits ?? 15);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('the server takes the first valid offer and never answers with an invalid or unknown parameter', () => {
    const name = fc.constantFrom(
      'server_no_context_takeover',
      'client_no_context_takeover',
      'server_max_window_bits',
      'client_max_window_bits',
      'other',
    );
    const value = fc.oneof(
      fc.constant(true as const),
      fc.constantFrom('7', '8', '9', '10', '15', '16', '010', 'x'),
    );
    const offer = fc.record({
      name: fc.constant('permessage-deflate'),
      params: fc.array(fc.tuple(name, value), { maxLength: 4 }),
    });
    const validBits = (v: string | true) => v === '8' || v === '9' || v === '10' || v === '15';
    /** A model of RFC 7692 §7.1 validity for the generated offers. */
    const valid = (o: { params: Array<[string, string | true]> }) =>
      new Set(o.params.map(([n]) => n)).size === o.params.length &&
      o.params.every(([n, v]) => {
        if (n.endsWith('_no_context_takeover')) return v === true;
        if (n === 'server_max_window_bits') return validBits(v);
        if (n === 'client_max_window_bits') return v === true || validBits(v);
        return false;
      });
    fc.assert(
      fc.property(fc.array(offer, { maxLength: 3 }), serverOptions, (offers, server) => {
        const result = negotiate(offers, server);
        const first = offers.find(valid);
        if (first === undefined) {
          expect(result).toBeNull();
          return;
        }
        expect(result).not.toBeNull();
        const { response, params } = result!;
        const names = response.params.map(([n]) => n);
        expect(new Set(names).size).toBe(names.length);
        for (const [n, v] of response.params) {
          if (n.endsWith('_no_context_takeover')) expect(v).toBe(true);
          else expect(v).toMatch(/^(8|9|1[0-5])$/);
          expect(n).not.toBe('other');
        }
        // The answer is the first valid offer's, whatever its windows (8 included).
        const asked = first.params.find(([n]) => n === 'server_max_window_bits')?.[1];
        const expectedServerBits = Math.min(
          typeof asked === 'string' ? Number(asked) : 15,
          server.serverMaxWindowBits ?? 15,
        );
        expect(params.serverMaxWindowBits).toBe(expectedServerBits);
        expect(params.serverNoContextTakeover).toBe(
          first.params.some(([n]) => n === 'server_no_context_takeover') ||
            server.serverNoContextTakeover === true,
        );
        // The server compresses with the agreed window, an 8 run as zlib's 9, and nothing else.
        const serverSide = sideParams(params, 'server');
        expect(Object.keys(serverSide).sort()).toEqual(SIDE_KEYS);
        expect(serverSide.deflateWindowBits).toBe(Math.max(9, params.serverMaxWindowBits));
      }),
      { numRuns: 500 },
    );
  });
});
