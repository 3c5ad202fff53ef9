import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileGlob, globCacheSize, globMatch } from '../src/protocol/glob.js';

describe('globMatch', () => {
  it('matches a pattern without wildcards only against the identical string', () => {
    expect(globMatch('/chat', '/chat')).toBe(true);
    expect(globMatch('/chat', '/chat/')).toBe(false);
    expect(globMatch('/chat', '/cha')).toBe(false);
    expect(globMatch('', '')).toBe(true);
    expect(globMatch('', 'x')).toBe(false);
  });

  it('is case-sensitive', () => {
    expect(globMatch('/Chat', '/chat')).toBe(false);
    expect(globMatch('chat.*', 'CHAT.v1')).toBe(false);
    expect(globMatch('chat.*', 'chat.V1')).toBe(true);
  });

  it('lets * match any run of characters, including none and including "/"', () => {
    expect(globMatch('/chat/*', '/chat/')).toBe(true);
    expect(globMatch('/chat/*', '/chat/room')).toBe(true);
    expect(globMatch('/chat/*', '/chat/room/42/messages')).toBe(true);
    expect(globMatch('/chat/*', '/chat')).toBe(false);
    expect(globMatch('/chat/*', '/chatroom')).toBe(false);
    expect(globMatch('*', '')).toBe(true);
    expect(globMatch('*', 'anything/at/all')).toBe(true);
    expect(globMatch('a*b', 'ab')).toBe(true);
    expect(globMatch('a*b', 'a/x/b')).toBe(true);
    expect(globMatch('a*b', 'a/x/bc')).toBe(false);
    expect(globMatch('*.example.com', 'api.example.com')).toBe(true);
    expect(globMatch('*.example.com', 'example.com')).toBe(false);
  });

  it('lets * match line breaks too', () => {
    expect(globMatch('a*b', 'a\n\r\u2028b')).toBe(true);
    expect(globMatch('a?b', 'a\nb')).toBe(true);
  });

  it('lets ? match exactly one character', () => {
    expect(globMatch('v?', 'v1')).toBe(true);
    expect(globMatch('v?', 'v')).toBe(false);
    expect(globMatch('v?', 'v12')).toBe(false);
    expect(globMatch('a?c', 'a/c')).toBe(true);
    expect(globMatch('??', 'ab')).toBe(true);
    expect(globMatch('??', 'abc')).toBe(false);
  });

  it('treats ? as one code point, so an astral character counts once', () => {
    expect(globMatch('x?y', 'x😀y')).toBe(true);
    expect(globMatch('x??y', 'x😀y')).toBe(false);
  });

  it('treats regular-expression metacharacters literally', () => {
    const specials = ['.', '+', '(', ')', '[', ']', '{', '}', '^', '$', '|', '\\', '/', '-'];
    for (const ch of specials) {
      const pattern = `a${ch}b`;
      expect(globMatch(pattern, pattern), pattern).toBe(true);
      expect(globMatch(pattern, 'axb'), pattern).toBe(false);
    }
    expect(globMatch('1.2.3.4', '1x2x3x4')).toBe(false);
    expect(globMatch('a+', 'aa')).toBe(false);
    expect(globMatch('[ab]', 'a')).toBe(false);
    expect(globMatch('[ab]', '[ab]')).toBe(true);
    expect(globMatch('(a|b)*', '(a|b)xyz')).toBe(true);
    expect(globMatch('(a|b)*', 'a')).toBe(false);
    expect(globMatch('\\d', '1')).toBe(false);
    expect(globMatch('\\d', '\\d')).toBe(true);
  });

  it('anchors at both ends', () => {
    expect(globMatch('chat', 'xchat')).toBe(false);
    expect(globMatch('chat', 'chatx')).toBe(false);
    expect(globMatch('c*t', 'xchat')).toBe(false);
    expect(globMatch('c*t', 'chatx')).toBe(false);
  });

  it('treats a run of stars like one star', () => {
    expect(globMatch('a**b', 'ab')).toBe(true);
    expect(globMatch('a***b', 'a//b')).toBe(true);
    expect(globMatch('a**b', 'a')).toBe(false);
  });

  it('matches a list when any pattern matches, and an empty list never', () => {
    expect(globMatch(['127.0.0.1', '::1'], '::1')).toBe(true);
    expect(globMatch(['127.0.0.1', '::1'], '10.0.0.1')).toBe(false);
    expect(globMatch(['10.*', '192.168.*'], '192.168.1.20')).toBe(true);
    expect(globMatch([], 'anything')).toBe(false);
  });

  it('handles many stars against a non-matching subject in reasonable time', () => {
    const start = performance.now();
    expect(globMatch('*a*a*a*a*b', 'a'.repeat(200))).toBe(false);
    expect(performance.now() - start).toBeLessThan(2000);
  });
});

describe('compileGlob', () => {
  it('returns an anchored RegExp without global state', () => {
    const re = compileGlob('/chat/*');
    expect(re).toBeInstanceOf(RegExp);
    expect(re.global).toBe(false);
    expect(re.sticky).toBe(false);
    expect(re.test('/chat/a')).toBe(true);
    expect(re.test('/chat/a')).toBe(true); // no lastIndex carried over
    expect(re.test('x/chat/a')).toBe(false);
  });

  it('caches compiled patterns', () => {
    expect(compileGlob('/cached/*')).toBe(compileGlob('/cached/*'));
    expect(compileGlob('/cached/*')).not.toBe(compileGlob('/cached/?'));
  });

  it('keeps the cache bounded', () => {
    for (let i = 0; i < 1500; i++) compileGlob(`/bounded/${i}/*`);
    expect(globCacheSize()).toBeLessThanOrEqual(1000);
    expect(globCacheSize()).toBeGreaterThan(0);
    // The newest pattern survived the eviction, the oldest did not.
    const newest = compileGlob('/bounded/1499/*');
    expect(compileGlob('/bounded/1499/*')).toBe(newest);
  });

  it('rejects a non-string pattern', () => {
    expect(() => compileGlob(42 as unknown as string)).toThrow(TypeError);
  });
});

describe('glob properties', () => {
  const noWildcards = fc.string({ maxLength: 20 }).filter((s) => !s.includes('*') && !s.includes('?'));

  it('a pattern without wildcards matches exactly itself', () => {
    fc.assert(
      fc.property(noWildcards, fc.string({ maxLength: 20 }), (pattern, other) => {
        expect(globMatch(pattern, pattern)).toBe(true);
        expect(compileGlob(pattern).test(pattern)).toBe(true);
        expect(globMatch(pattern, other)).toBe(other === pattern);
      }),
    );
  });

  it('*X* matches exactly the strings that contain X', () => {
    fc.assert(
      fc.property(
        noWildcards,
        fc.string({ maxLength: 20 }),
        fc.string({ maxLength: 20 }),
        (x, before, after) => {
          expect(globMatch(`*${x}*`, before + x + after)).toBe(true);
          expect(globMatch(`*${x}*`, before)).toBe(before.includes(x));
        },
      ),
    );
  });

  it('X* matches exactly the strings that start with X', () => {
    fc.assert(
      fc.property(noWildcards, fc.string({ maxLength: 20 }), (x, s) => {
        expect(globMatch(`${x}*`, s)).toBe(s.startsWith(x));
      }),
    );
  });

  it('a pattern of n question marks matches exactly the strings of n code points', () => {
    fc.assert(
      fc.property(fc.nat(8), fc.string({ maxLength: 10, unit: 'binary' }), (n, s) => {
        expect(globMatch('?'.repeat(n), s)).toBe([...s].length === n);
      }),
    );
  });

  it('agrees with a straightforward dynamic-programming matcher', () => {
    // Reference: can pattern[i..] match subject[j..]? (subjects here are plain BMP strings)
    const reference = (pattern: string, subject: string): boolean => {
      const p = [...pattern];
      const s = [...subject];
      let row = new Array<boolean>(s.length + 1).fill(false);
      row[s.length] = true;
      for (let i = p.length - 1; i >= 0; i--) {
        const next = new Array<boolean>(s.length + 1).fill(false);
        for (let j = s.length; j >= 0; j--) {
          if (p[i] === '*') next[j] = row[j]! || (j < s.length && next[j + 1]!);
          else next[j] = j < s.length && (p[i] === '?' || p[i] === s[j]) && row[j + 1]!;
        }
        row = next;
      }
      return row[0]!;
    };
    const patternChar = fc.constantFrom('a', 'b', '/', '.', '*', '?');
    const subjectChar = fc.constantFrom('a', 'b', '/', '.');
    fc.assert(
      fc.property(
        fc.string({ unit: patternChar, maxLength: 8 }),
        fc.string({ unit: subjectChar, maxLength: 12 }),
        (pattern, subject) => {
          expect(globMatch(pattern, subject)).toBe(reference(pattern, subject));
          expect(compileGlob(pattern).test(subject)).toBe(reference(pattern, subject));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('never throws, whatever the pattern', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 30, unit: 'binary' }), fc.string({ maxLength: 30 }), (p, s) => {
        expect(typeof globMatch(p, s)).toBe('boolean');
      }),
    );
  });
});
