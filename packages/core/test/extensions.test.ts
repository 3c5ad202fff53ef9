import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HandshakeError } from '../src/protocol/errors.js';
import {
  countParam,
  type ExtensionOffer,
  findDuplicateParam,
  formatExtension,
  formatExtensions,
  getParam,
  isExtension,
  isToken,
  parseExtensions,
} from '../src/protocol/extensions.js';

function parseError(header: string): HandshakeError {
  try {
    parseExtensions(header);
  } catch (error) {
    expect(error).toBeInstanceOf(HandshakeError);
    return error as HandshakeError;
  }
  throw new Error(`expected ${JSON.stringify(header)} to be rejected`);
}

describe('isToken', () => {
  it('accepts RFC 7230 tchars', () => {
    expect(isToken('permessage-deflate')).toBe(true);
    expect(isToken("!#$%&'*+-.^_`|~09azAZ")).toBe(true);
  });

  it('rejects empty strings, separators, whitespace, controls and non-ASCII', () => {
    for (const bad of [
      '',
      'a b',
      'a,b',
      'a;b',
      'a=b',
      '"a"',
      'a/b',
      'a:b',
      'a@b',
      '(a)',
      '[a]',
      '{a}',
      'a?',
      'a\\b',
    ]) {
      expect(isToken(bad), bad).toBe(false);
    }
    expect(isToken('a\tb')).toBe(false);
    expect(isToken('a\x00')).toBe(false);
    expect(isToken('a\x7f')).toBe(false);
    expect(isToken('é')).toBe(false);
  });
});

describe('parseExtensions', () => {
  it('returns [] for an absent, empty or blank header', () => {
    expect(parseExtensions(undefined)).toEqual([]);
    expect(parseExtensions('')).toEqual([]);
    expect(parseExtensions(' \t ')).toEqual([]);
    expect(parseExtensions([])).toEqual([]);
  });

  it('parses a bare extension', () => {
    expect(parseExtensions('permessage-deflate')).toEqual([{ name: 'permessage-deflate', params: [] }]);
  });

  it('parses parameters with and without values, in order', () => {
    expect(parseExtensions('permessage-deflate; client_max_window_bits; server_max_window_bits=10')).toEqual([
      {
        name: 'permessage-deflate',
        params: [
          ['client_max_window_bits', true],
          ['server_max_window_bits', '10'],
        ],
      },
    ]);
  });

  it('accepts optional whitespace around every separator', () => {
    const expected = [
      {
        name: 'a',
        params: [
          ['b', '1'],
          ['c', true],
        ],
      },
      { name: 'd', params: [] },
    ];
    expect(parseExtensions('a;b=1;c,d')).toEqual(expected);
    expect(parseExtensions('  a ; b = 1 ;  c ,  d  ')).toEqual(expected);
    expect(parseExtensions('\ta\t;\tb\t=\t1\t;\tc\t,\td\t')).toEqual(expected);
  });

  it('parses several extensions and several offers of the same extension', () => {
    expect(
      parseExtensions(
        'permessage-deflate; server_max_window_bits=10, permessage-deflate, x-webkit-deflate-frame',
      ),
    ).toEqual([
      { name: 'permessage-deflate', params: [['server_max_window_bits', '10']] },
      { name: 'permessage-deflate', params: [] },
      { name: 'x-webkit-deflate-frame', params: [] },
    ]);
  });

  it('treats several header lines as one list', () => {
    expect(parseExtensions(['a; x=1', 'b'])).toEqual([
      { name: 'a', params: [['x', '1']] },
      { name: 'b', params: [] },
    ]);
  });

  it('ignores empty list elements (RFC 7230 §7)', () => {
    expect(parseExtensions('a,,b')).toEqual([
      { name: 'a', params: [] },
      { name: 'b', params: [] },
    ]);
    expect(parseExtensions(', a , ,')).toEqual([{ name: 'a', params: [] }]);
  });

  it('keeps duplicate parameters so that callers can detect them', () => {
    expect(parseExtensions('x; a; a=1')).toEqual([
      {
        name: 'x',
        params: [
          ['a', true],
          ['a', '1'],
        ],
      },
    ]);
  });

  it('keeps the case of names and values', () => {
    expect(parseExtensions('PerMessage-Deflate; Server_Max_Window_Bits=Ab')).toEqual([
      { name: 'PerMessage-Deflate', params: [['Server_Max_Window_Bits', 'Ab']] },
    ]);
  });

  describe('quoted values', () => {
    it('unquotes a quoted token', () => {
      expect(parseExtensions('x; a="b"')).toEqual([{ name: 'x', params: [['a', 'b']] }]);
      expect(parseExtensions('permessage-deflate; server_max_window_bits="10"')).toEqual([
        { name: 'permessage-deflate', params: [['server_max_window_bits', '10']] },
      ]);
    });

    it('unescapes backslash escapes', () => {
      expect(parseExtensions('x; a="\\b\\c"')).toEqual([{ name: 'x', params: [['a', 'bc']] }]);
    });

    it('allows separators inside the quotes only if the unescaped value is a token', () => {
      // A quoted-string may hold a comma or semicolon syntactically, but RFC 6455 §9.1
      // requires the unescaped value to be a token.
      for (const header of [
        'x; a="b,c"',
        'x; a="b;c"',
        'x; a="b c"',
        'x; a="b\\"c"',
        'x; a=""',
        'x; a="é"',
      ]) {
        const error = parseError(header);
        expect(error.status, header).toBe(400);
        expect(error.message, header).toMatch(/not a token/);
      }
    });

    it('continues correctly after a quoted value', () => {
      expect(parseExtensions('x; a="1"; b, y; c = "2" ')).toEqual([
        {
          name: 'x',
          params: [
            ['a', '1'],
            ['b', true],
          ],
        },
        { name: 'y', params: [['c', '2']] },
      ]);
    });

    it('rejects an unterminated quoted string or a trailing backslash', () => {
      expect(parseError('x; a="b').message).toMatch(/not terminated/);
      expect(parseError('x; a="b\\').message).toMatch(/backslash/);
    });

    it('rejects control characters in a quoted string', () => {
      expect(parseError('x; a="b\x01"').message).toMatch(/control character 0x01/);
      expect(parseError('x; a="b\\\x01"').message).toMatch(/control character 0x01/);
    });

    it('rejects text glued to the closing quote', () => {
      expect(parseError('x; a="1"b').message).toMatch(/unexpected character "b"/);
    });
  });

  describe('syntax errors', () => {
    const cases: [string, RegExp][] = [
      [';a', /expected an extension name but found character ";" at position 1/],
      ['a;', /expected a parameter name after ';' in extension "a" but found the end of the header/],
      ['a; =1', /expected a parameter name/],
      ['a; b=', /expected a value for parameter "b" but found the end of the header/],
      ['a; b=;c', /expected a value for parameter "b"/],
      ['a b', /unexpected character "b" at position 3 after extension "a"/],
      ['a; b=1 2', /unexpected character "2"/],
      ['a=1', /unexpected character "="/],
      ['"a"', /expected an extension name/],
      ['a; b c', /unexpected character "c"/],
      ['a; b/c', /unexpected character "\/"/],
      ['é', /expected an extension name but found character "é"/],
      ['a\x00', /control character 0x00/],
      ['a, ;', /expected an extension name/],
    ];
    for (const [header, message] of cases) {
      it(`rejects ${JSON.stringify(header)}`, () => {
        const error = parseError(header);
        expect(error.status).toBe(400);
        expect(error.message).toMatch(/^Invalid Sec-WebSocket-Extensions header: /);
        expect(error.message).toMatch(message);
        expect(error.message.endsWith('.')).toBe(true);
      });
    }
  });
});

describe('formatExtensions', () => {
  it('formats names, flags and values', () => {
    expect(
      formatExtensions([
        {
          name: 'permessage-deflate',
          params: [
            ['client_max_window_bits', true],
            ['server_max_window_bits', '10'],
          ],
        },
        { name: 'permessage-deflate', params: [] },
      ]),
    ).toBe('permessage-deflate; client_max_window_bits; server_max_window_bits=10, permessage-deflate');
    expect(formatExtensions([])).toBe('');
    expect(formatExtension({ name: 'x', params: [['a', 'b']] })).toBe('x; a=b');
  });

  it('writes token values bare (no quotes are ever needed)', () => {
    expect(formatExtensions([{ name: 'x', params: [['a', "!#$%&'*+-.^_`|~"]] }])).toBe(
      "x; a=!#$%&'*+-.^_`|~",
    );
  });

  it('refuses names and values that are not tokens', () => {
    expect(() => formatExtensions([{ name: 'a b', params: [] }])).toThrow(TypeError);
    expect(() => formatExtensions([{ name: '', params: [] }])).toThrow(TypeError);
    expect(() => formatExtensions([{ name: 'x', params: [['a;', true]] }])).toThrow(TypeError);
    expect(() => formatExtensions([{ name: 'x', params: [['a', 'b c']] }])).toThrow(TypeError);
    expect(() => formatExtensions([{ name: 'x', params: [['a', '']] }])).toThrow(TypeError);
    expect(() => formatExtensions([{ name: 'x', params: [['a', 'b\r\nX-Injected: 1']] }])).toThrow(TypeError);
  });
});

describe('parameter helpers', () => {
  const offer: ExtensionOffer = {
    name: 'permessage-deflate',
    params: [
      ['client_max_window_bits', true],
      ['Server_Max_Window_Bits', '10'],
      ['server_max_window_bits', '12'],
    ],
  };

  it('getParam finds the first occurrence, case-insensitively', () => {
    expect(getParam(offer, 'client_max_window_bits')).toBe(true);
    expect(getParam(offer, 'server_max_window_bits')).toBe('10');
    expect(getParam(offer, 'SERVER_MAX_WINDOW_BITS')).toBe('10');
    expect(getParam(offer, 'server_no_context_takeover')).toBeUndefined();
  });

  it('countParam and findDuplicateParam see duplicates regardless of case', () => {
    expect(countParam(offer, 'server_max_window_bits')).toBe(2);
    expect(countParam(offer, 'client_max_window_bits')).toBe(1);
    expect(countParam(offer, 'nope')).toBe(0);
    expect(findDuplicateParam(offer)).toBe('server_max_window_bits');
    expect(
      findDuplicateParam({
        name: 'x',
        params: [
          ['a', true],
          ['b', true],
        ],
      }),
    ).toBeUndefined();
  });

  it('isExtension compares names case-insensitively', () => {
    expect(isExtension(offer, 'permessage-deflate')).toBe(true);
    expect(isExtension({ name: 'PerMessage-Deflate', params: [] }, 'permessage-deflate')).toBe(true);
    expect(isExtension(offer, 'x-webkit-deflate-frame')).toBe(false);
  });
});

describe('parse/format properties', () => {
  const tchars = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".split('');
  const token = fc.string({ unit: fc.constantFrom(...tchars), minLength: 1, maxLength: 12 });
  const param = fc.tuple(token, fc.oneof(fc.constant(true as const), token));
  const offer = fc.record({ name: token, params: fc.array(param, { maxLength: 5 }) });
  const offers = fc.array(offer, { maxLength: 5 });

  it('parseExtensions(formatExtensions(x)) is x', () => {
    fc.assert(
      fc.property(offers, (list) => {
        expect(parseExtensions(formatExtensions(list))).toEqual(list);
      }),
    );
  });

  it('formatting is stable: format(parse(format(x))) is format(x)', () => {
    fc.assert(
      fc.property(offers, (list) => {
        const text = formatExtensions(list);
        expect(formatExtensions(parseExtensions(text))).toBe(text);
      }),
    );
  });

  it('parses any spelling: extra whitespace, quoted and escaped values, empty elements', () => {
    const ows = fc.string({ unit: fc.constantFrom(' ', '\t'), maxLength: 2 });
    // Render a value either bare, quoted, or quoted with every character escaped.
    const spelling = fc.constantFrom('bare', 'quoted', 'escaped');
    const render = (value: string, how: string) =>
      how === 'bare'
        ? value
        : how === 'quoted'
          ? `"${value}"`
          : `"${[...value].map((c) => `\\${c}`).join('')}"`;
    const spelledParam = fc.tuple(param, spelling, ows, ows, ows, ows);
    const spelledOffer = fc.tuple(token, fc.array(spelledParam, { maxLength: 4 }), ows, ows, fc.boolean());

    fc.assert(
      fc.property(fc.array(spelledOffer, { maxLength: 4 }), (list) => {
        const expected: ExtensionOffer[] = [];
        const parts: string[] = [];
        for (const [name, params, before, after, extraComma] of list) {
          let text = `${before}${name}`;
          for (const [[pname, value], how, w1, w2, w3, w4] of params) {
            text += `${w1};${w2}${pname}`;
            if (value !== true) text += `${w3}=${w4}${render(value, how)}`;
          }
          parts.push(`${text}${after}`);
          if (extraComma) parts.push(after);
          expected.push({ name, params: params.map(([p]) => p) });
        }
        expect(parseExtensions(parts.join(','))).toEqual(expected);
      }),
    );
  });

  it('never throws anything but a HandshakeError with status 400', () => {
    const alphabet = fc.constantFrom('a', 'b', '=', ';', ',', '"', '\\', ' ', '\t', '\x01', 'é', '/', '1');
    fc.assert(
      fc.property(fc.string({ unit: alphabet, maxLength: 24 }), (header) => {
        try {
          const result = parseExtensions(header);
          // Whatever parses must format back to something that parses the same way.
          expect(parseExtensions(formatExtensions(result))).toEqual(result);
        } catch (error) {
          expect(error).toBeInstanceOf(HandshakeError);
          expect((error as HandshakeError).status).toBe(400);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
