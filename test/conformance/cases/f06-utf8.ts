/**
 * Family 6 — UTF-8 in text messages (RFC 6455 §5.6, §8.1): valid text is echoed byte for
 * byte; invalid text fails the connection with 1007, as early as possible. The samples
 * follow the structure of Markus Kuhn's UTF-8 decoder stress test (boundary cases,
 * malformed sequences, overlongs, surrogates, non-characters), written out here.
 *
 * Every sample is sent as one frame, fragmented at code point boundaries and fragmented
 * per byte. Invalid samples whose error is visible before their end are also sent in two
 * fail-fast variants: the bytes up to the error, a pause until our side reacts, then the
 * rest — once as two fragments, once inside a single frame whose tail is held back.
 */
import { OP, text } from '../harness/peer.js';
import { hex, splitCodePoints, utf8FailIndex } from '../harness/util.js';
import { type Case, defineCase } from './common.js';

interface Sample {
  id: string;
  label: string;
  bytes: Buffer;
}

const u = (s: string) => Buffer.from(s, 'utf8');
const KOSME = 'cebae1bdb9cf83cebcceb5';

function samples(): Sample[] {
  const list: Sample[] = [];
  const add = (id: string, label: string, bytes: Buffer): void => {
    list.push({ id, label, bytes });
  };

  add('6.2.1', 'mixed Latin-1 text "Hello-µ@ßöäüàá-UTF-8!!"', u('Hello-µ@ßöäüàá-UTF-8!!'));
  add(
    '6.2.2',
    'ASCII control characters U+0000..U+001F and U+007F',
    Buffer.from([...Array(32).keys(), 0x7f]),
  );
  add('6.3.1', 'κόσμε with a surrogate (ED A0 80) inside', hex(`${KOSME}eda080656469746564`));
  // 6.5: valid multilingual text.
  add('6.5.1', 'Greek "κόσμε"', hex(KOSME));
  add('6.5.2', 'Russian text', u('Привет, мир! Съешь же ещё этих мягких французских булок.'));
  add('6.5.3', 'Japanese text', u('いろはにほへと ちりぬるを 日本語のテキスト'));
  add('6.5.4', 'supplementary-plane characters (emoji, musical symbols)', u('😀🚀 𝄞𝄢 🇩🇪'));
  add('6.5.5', 'mixed 1-, 2-, 3- and 4-byte characters', u('a€𝄞bß日😀z'));
  // 6.6: every prefix of κόσμε; prefixes ending inside a character are invalid.
  const kosme = hex(KOSME);
  for (let n = 1; n <= kosme.length; n++)
    add(`6.6.${n}`, `the first ${n} bytes of "κόσμε"`, kosme.subarray(0, n));
  // 6.7: first possible sequence of each length.
  add('6.7.1', 'U+0000 (first 1-byte sequence)', hex('00'));
  add('6.7.2', 'U+0080 (first 2-byte sequence)', hex('c280'));
  add('6.7.3', 'U+0800 (first 3-byte sequence)', hex('e0a080'));
  add('6.7.4', 'U+10000 (first 4-byte sequence)', hex('f0908080'));
  // 6.8: 5- and 6-byte forms (not UTF-8 since RFC 3629).
  add('6.8.1', 'first 5-byte sequence F8 88 80 80 80', hex('f888808080'));
  add('6.8.2', 'first 6-byte sequence FC 84 80 80 80 80', hex('fc8480808080'));
  // 6.9: last possible sequence of each length.
  add('6.9.1', 'U+007F (last 1-byte sequence)', hex('7f'));
  add('6.9.2', 'U+07FF (last 2-byte sequence)', hex('dfbf'));
  add('6.9.3', 'U+FFFF (last 3-byte sequence)', hex('efbfbf'));
  add('6.9.4', 'U+10FFFF (last valid code point)', hex('f48fbfbf'));
  // 6.10: beyond the Unicode range.
  add('6.10.1', 'U+1FFFFF as a 4-byte sequence F7 BF BF BF', hex('f7bfbfbf'));
  add('6.10.2', 'U+3FFFFFF as a 5-byte sequence', hex('fbbfbfbfbf'));
  add('6.10.3', 'U+7FFFFFFF as a 6-byte sequence', hex('fdbfbfbfbfbf'));
  // 6.11: other boundaries.
  add('6.11.1', 'U+D7FF (last before the surrogates)', hex('ed9fbf'));
  add('6.11.2', 'U+E000 (first after the surrogates)', hex('ee8080'));
  add('6.11.3', 'U+FFFD (replacement character)', hex('efbfbd'));
  add('6.11.4', 'U+10FFFF', hex('f48fbfbf'));
  add('6.11.5', 'U+110000 (first code point out of range) F4 90 80 80', hex('f4908080'));
  // 6.12: unexpected continuation bytes.
  add('6.12.1', 'first continuation byte 80 alone', hex('80'));
  add('6.12.2', 'last continuation byte BF alone', hex('bf'));
  add('6.12.3', '2 continuation bytes', hex('80bf'));
  add('6.12.4', '3 continuation bytes', hex('80bf80'));
  add('6.12.5', '4 continuation bytes', hex('80bf80bf'));
  add('6.12.6', '5 continuation bytes', hex('80bf80bf80'));
  add('6.12.7', '6 continuation bytes', hex('80bf80bf80bf'));
  add('6.12.8', '7 continuation bytes', hex('80bf80bf80bfbf'));
  add(
    '6.12.9',
    'all 64 continuation bytes 80..BF',
    Buffer.from(Array.from({ length: 64 }, (_, i) => 0x80 + i)),
  );
  add(
    '6.12.10',
    'valid text, then a stray continuation byte',
    Buffer.concat([u('abc'), hex('80'), u('def')]),
  );
  // 6.13: lonely start bytes, each followed by a space.
  const lonely = (from: number, to: number) => {
    const out: number[] = [];
    for (let b = from; b <= to; b++) out.push(b, 0x20);
    return Buffer.from(out);
  };
  add(
    '6.13.1',
    'all 32 first bytes of 2-byte sequences (C0..DF), each followed by a space',
    lonely(0xc0, 0xdf),
  );
  add(
    '6.13.2',
    'all 16 first bytes of 3-byte sequences (E0..EF), each followed by a space',
    lonely(0xe0, 0xef),
  );
  add(
    '6.13.3',
    'all 8 first bytes of 4-byte sequences (F0..F7), each followed by a space',
    lonely(0xf0, 0xf7),
  );
  add(
    '6.13.4',
    'all 4 first bytes of 5-byte sequences (F8..FB), each followed by a space',
    lonely(0xf8, 0xfb),
  );
  add(
    '6.13.5',
    'the 2 first bytes of 6-byte sequences (FC, FD), each followed by a space',
    lonely(0xfc, 0xfd),
  );
  add('6.13.6', 'a valid 2-byte lead C2 followed by a space', hex('c220'));
  add('6.13.7', 'a valid 3-byte lead E1 followed by a space', hex('e120'));
  add('6.13.8', 'a valid 4-byte lead F1 followed by a space', hex('f120'));
  // 6.14: sequences with the last continuation byte missing.
  const truncated = [
    ['c0', '2-byte sequence C0 (U+0000 overlong) missing its last byte'],
    ['e080', '3-byte sequence E0 80 missing its last byte'],
    ['f08080', '4-byte sequence F0 80 80 missing its last byte'],
    ['f8808080', '5-byte sequence missing its last byte'],
    ['fc80808080', '6-byte sequence missing its last byte'],
    ['df', '2-byte sequence DF (U+07FF) missing its last byte'],
    ['efbf', '3-byte sequence EF BF (U+FFFF) missing its last byte'],
    ['f7bfbf', '4-byte sequence F7 BF BF missing its last byte'],
    ['fbbfbfbf', '5-byte sequence missing its last byte'],
    ['fdbfbfbfbf', '6-byte sequence missing its last byte'],
    ['c2', 'valid lead C2 at the end of the message'],
    ['e0a0', 'valid 3-byte prefix E0 A0 at the end of the message'],
    ['f09080', 'valid 4-byte prefix F0 90 80 at the end of the message'],
    ['f48fbf', 'valid 4-byte prefix F4 8F BF at the end of the message'],
  ] as const;
  truncated.forEach(([h, label], i) => {
    add(`6.14.${i + 1}`, label, hex(h));
  });
  add(
    '6.15.1',
    'all ten incomplete sequences of 6.14.1-10 concatenated',
    hex(
      truncated
        .slice(0, 10)
        .map(([h]) => h)
        .join(''),
    ),
  );
  // 6.16: bytes that never appear in UTF-8.
  add('6.16.1', 'byte FE', hex('fe'));
  add('6.16.2', 'byte FF', hex('ff'));
  add('6.16.3', 'bytes FE FE FF FF', hex('fefeffff'));
  add('6.16.4', 'byte C1 (always overlong)', hex('c1'));
  add('6.16.5', 'byte F5 (beyond U+10FFFF)', hex('f5808080'));
  // 6.17: overlong forms of "/".
  ['c0af', 'e080af', 'f08080af', 'f8808080af', 'fc80808080af'].forEach((h, i) => {
    add(`6.17.${i + 1}`, `overlong "/" in ${i + 2} bytes`, hex(h));
  });
  // 6.18: maximum overlong sequences.
  ['c1bf', 'e09fbf', 'f08fbfbf', 'f887bfbfbf', 'fc83bfbfbfbf'].forEach((h, i) => {
    add(`6.18.${i + 1}`, `maximum overlong ${i + 2}-byte sequence`, hex(h));
  });
  // 6.19: overlong NUL.
  ['c080', 'e08080', 'f0808080', 'f880808080', 'fc8080808080'].forEach((h, i) => {
    add(`6.19.${i + 1}`, `overlong U+0000 in ${i + 2} bytes`, hex(h));
  });
  // 6.20: single UTF-16 surrogates.
  [
    ['eda080', 'D800'],
    ['edadbf', 'DB7F'],
    ['edae80', 'DB80'],
    ['edafbf', 'DBFF'],
    ['edb080', 'DC00'],
    ['edbe80', 'DF80'],
    ['edbfbf', 'DFFF'],
  ].forEach(([h, cp], i) => {
    add(`6.20.${i + 1}`, `single surrogate U+${cp}`, hex(h!));
  });
  // 6.21: paired surrogates (CESU-8), still invalid UTF-8.
  const highs = [
    ['eda080', 'D800'],
    ['edadbf', 'DB7F'],
    ['edae80', 'DB80'],
    ['edafbf', 'DBFF'],
  ];
  const lows = [
    ['edb080', 'DC00'],
    ['edbfbf', 'DFFF'],
  ];
  let k = 1;
  for (const [hh, hc] of highs)
    for (const [lh, lc] of lows) add(`6.21.${k++}`, `surrogate pair U+${hc} U+${lc}`, hex(hh! + lh!));
  // 6.22: non-characters are valid UTF-8 and must pass.
  add('6.22.1', 'non-character U+FFFE', hex('efbfbe'));
  add('6.22.2', 'non-character U+FFFF', hex('efbfbf'));
  for (let plane = 1; plane <= 16; plane++) {
    const cps = [plane * 0x10000 + 0xfffe, plane * 0x10000 + 0xffff];
    add(
      `6.22.${plane + 2}`,
      `non-characters U+${cps[0]!.toString(16).toUpperCase()} and U+${cps[1]!.toString(16).toUpperCase()}`,
      u(String.fromCodePoint(...cps)),
    );
  }
  add(
    '6.22.19',
    'non-characters U+FDD0..U+FDEF',
    u(String.fromCodePoint(...Array.from({ length: 32 }, (_, i) => 0xfdd0 + i))),
  );
  // 6.23: other valid specials.
  add('6.23.1', 'U+FEFF (byte order mark) at the start', u('\ufeffBOM first'));
  add('6.23.2', 'U+FFFD replacement characters', u('\ufffd\ufffd\ufffd'));
  add('6.23.3', 'combining characters and zero-width joiners', u('e\u0301 👩\u200d💻 \u200b'));
  add('6.23.4', 'every 2-byte boundary pair U+0080, U+07FF, U+0800', u('\u0080\u07ff\u0800'));
  add(
    '6.23.5',
    'κόσμε followed by U+110000 (F4 90 80 80) and more text',
    hex(`${KOSME}f4908080656469746564`),
  );
  add(
    '6.23.6',
    'valid text, then a truncated 3-byte sequence, then more text',
    Buffer.concat([u('abc'), hex('e282'), u('def')]),
  );
  return list;
}

export function utf8Cases(): Case[] {
  const cases: Case[] = [];
  const add = (c: Omit<Case, 'family' | 'directions'>) => cases.push(defineCase({ ...c, family: 6 }));

  // 6.1: empty text.
  add({
    id: '6.1.1',
    description: 'Send an empty text message.',
    run: (p) => p.sendText(''),
    expect: { echo: [text('')] },
  });
  add({
    id: '6.1.2',
    description: 'Send a text message made of 3 empty fragments.',
    run: (p) =>
      p.write([
        p.frame({ opcode: OP.TEXT, fin: false }),
        p.frame({ opcode: OP.CONT, fin: false }),
        p.frame({ opcode: OP.CONT }),
      ]),
    expect: { echo: [text('')] },
  });
  add({
    id: '6.1.3',
    description: 'Send a text message: an empty fragment, a fragment "middle", an empty fragment.',
    run: (p) =>
      p.write([
        p.frame({ opcode: OP.TEXT, fin: false }),
        p.frame({ opcode: OP.CONT, fin: false, payload: 'middle' }),
        p.frame({ opcode: OP.CONT }),
      ]),
    expect: { echo: [text('middle')] },
  });

  // 6.4: the classic fail-fast cases, with pauses between the parts.
  const failFast = [
    {
      id: '6.4.1',
      what: '3 fragments: valid "κόσμε", then F4 90 80 80 (U+110000), then "edited"',
      parts: [KOSME, 'f4908080', '656469746564'],
      frames: true,
    },
    {
      id: '6.4.2',
      what: '3 fragments: "κόσμε" + F4, then 90 (making it U+110000), then 80 80 "edited"',
      parts: [`${KOSME}f4`, '90', '8080656469746564'],
      frames: true,
    },
    {
      id: '6.4.3',
      what: 'one frame in 3 writes: header + "κόσμε", then F4 90 80 80, then "edited"',
      parts: [KOSME, 'f4908080', '656469746564'],
      frames: false,
    },
    {
      id: '6.4.4',
      what: 'one frame in 3 writes: header + "κόσμε" + F4, then 90, then 80 80 "edited"',
      parts: [`${KOSME}f4`, '90', '8080656469746564'],
      frames: false,
    },
  ];
  for (const f of failFast) {
    add({
      id: f.id,
      description: `Send invalid UTF-8 as ${f.what}; the connection must fail before the third part is sent.`,
      run: async (p) => {
        const [a, b, c] = f.parts.map(hex) as [Buffer, Buffer, Buffer];
        if (f.frames) {
          await p.send({ opcode: OP.TEXT, fin: false, payload: a });
          await p.sleep(50);
          await p.send({ opcode: OP.CONT, fin: false, payload: b });
          await p.waitFailure();
          p.mark('rest');
          await p.send({ opcode: OP.CONT, payload: c });
        } else {
          const frame = p.frame({ opcode: OP.TEXT, payload: Buffer.concat([a, b, c]) });
          const headerLength = frame.length - a.length - b.length - c.length;
          await p.write(frame.subarray(0, headerLength + a.length));
          await p.sleep(50);
          await p.write(frame.subarray(headerLength + a.length, headerLength + a.length + b.length));
          await p.waitFailure();
          p.mark('rest');
          await p.write(frame.subarray(headerLength + a.length + b.length));
        }
      },
      expect: { fail: { codes: [1007] }, failBefore: 'rest' },
    });
  }

  for (const s of samples()) {
    const failAt = utf8FailIndex(s.bytes);
    const valid = failAt < 0;
    const expectFor = valid ? { echo: [text(s.bytes)] } : { fail: { codes: [1007] } };
    const what = `${valid ? 'valid' : 'invalid'} UTF-8: ${s.label} (${s.bytes.length} bytes)`;
    add({
      id: `${s.id}.1`,
      description: `Send ${what}, as one text frame.`,
      run: (p) => p.sendText(s.bytes),
      expect: expectFor,
    });
    add({
      id: `${s.id}.2`,
      description: `Send ${what}, fragmented at code point boundaries.`,
      run: (p) => p.sendText(s.bytes, { fragmentSize: splitCodePoints(s.bytes).map((b) => b.length) }),
      expect: expectFor,
    });
    if (s.bytes.length > 1) {
      add({
        id: `${s.id}.3`,
        description: `Send ${what}, in fragments of 1 byte.`,
        run: (p) => p.sendText(s.bytes, { fragmentSize: 1 }),
        expect: expectFor,
      });
    }
    if (!valid && failAt < s.bytes.length) {
      // Fail-fast: the error is visible at byte `failAt`; hold back what follows.
      const bad = s.bytes.subarray(0, failAt + 1);
      const rest = Buffer.concat([s.bytes.subarray(failAt + 1), Buffer.from(' (rest)')]);
      add({
        id: `${s.id}.4`,
        description: `Send ${what}: a fragment ending at the first invalid byte (offset ${failAt}), then — after a pause — the rest; the connection must fail before the rest is sent.`,
        run: async (p) => {
          await p.send({ opcode: OP.TEXT, fin: false, payload: bad });
          await p.waitFailure();
          p.mark('rest');
          await p.send({ opcode: OP.CONT, payload: rest });
        },
        expect: { fail: { codes: [1007] }, failBefore: 'rest' },
      });
      add({
        id: `${s.id}.5`,
        description: `Send ${what} inside one text frame: the header and the bytes up to the first invalid one (offset ${failAt}), then — after a pause — the rest of the frame; the connection must fail before the rest is sent.`,
        run: async (p) => {
          const frame = p.frame({ opcode: OP.TEXT, payload: Buffer.concat([bad, rest]) });
          const cut = frame.length - rest.length;
          await p.write(frame.subarray(0, cut));
          await p.waitFailure();
          p.mark('rest');
          await p.write(frame.subarray(cut));
        },
        expect: { fail: { codes: [1007] }, failBefore: 'rest' },
      });
    }
  }
  return cases;
}

/** The samples with the validity the reference checker gives them (for a sanity test). */
export function utf8Samples(): Array<Sample & { valid: boolean }> {
  return samples().map((s) => ({ ...s, valid: utf8FailIndex(s.bytes) < 0 }));
}
