/**
 * Family 13 — permessage-deflate parameters (RFC 7692 §7.1): every offer parameter and
 * their combinations. In the server direction the fuzzing client sends the offer and
 * checks our server's answer (valid per RFC 7692, and the one expected from wskit's
 * policy); in the client direction our connect() is configured to make the offer and the
 * fuzzing server answers as a scenario says. Then series of messages of growing size go
 * both ways through the negotiated compressors: the peer compresses with exactly its
 * agreed window and context rules, and inflates our side's messages with exactly the
 * agreed window, so a compressor that ignores the agreement breaks the echo.
 */
import type { PerMessageDeflateOptions } from '@wskit/core';
import { binary, text } from '../harness/peer.js';
import { parseExtensionHeader } from '../harness/pmd.js';
import type { Direction, ExpectedItem, Outcome } from '../harness/types.js';
import { type Case, defineCase } from './common.js';
import { DEFLATE_SIZES, series } from './f12-deflate.js';

interface Scenario {
  name: string;
  /** The offer header. */
  offer: string;
  /**
   * Our client's options making that offer. Options without clientMaxWindowBits get
   * `clientMaxWindowBits: false` (the offer spells out every parameter) unless
   * `defaultOffer` is set.
   */
  client: PerMessageDeflateOptions | PerMessageDeflateOptions[];
  /** `client` is used as is: our client's default offer (client_max_window_bits, no value). */
  defaultOffer?: boolean;
  /** The fuzzing server's answer (client direction). */
  response: string;
  /** Our server's options (server direction). Default {}. */
  server?: PerMessageDeflateOptions;
  /** What our server is expected to answer (server direction). Default: `response`. */
  serverResponse?: string;
  directions?: Direction[];
  /** Server direction: declining the offer is acceptable too. */
  mayDecline?: boolean;
}

const PMD = 'permessage-deflate';

function scenarios(): Scenario[] {
  const list: Scenario[] = [
    { name: 'no parameters', offer: PMD, client: {}, response: PMD },
    {
      name: 'server_no_context_takeover',
      offer: `${PMD}; server_no_context_takeover`,
      client: { serverNoContextTakeover: true },
      response: `${PMD}; server_no_context_takeover`,
    },
    {
      name: 'client_no_context_takeover',
      offer: `${PMD}; client_no_context_takeover`,
      client: { clientNoContextTakeover: true },
      response: `${PMD}; client_no_context_takeover`,
      // wskit's server does not need to ask for it; the client keeps its promise anyway.
      serverResponse: PMD,
    },
  ];
  for (let bits = 9; bits <= 15; bits++) {
    list.push({
      name: `server_max_window_bits=${bits}`,
      offer: `${PMD}; server_max_window_bits=${bits}`,
      client: { serverMaxWindowBits: bits },
      response: `${PMD}; server_max_window_bits=${bits}`,
    });
  }
  list.push({
    name: 'client_max_window_bits without a value',
    offer: `${PMD}; client_max_window_bits`,
    client: { clientMaxWindowBits: true },
    response: PMD,
  });
  for (let bits = 9; bits <= 15; bits++) {
    list.push({
      name: `client_max_window_bits=${bits}`,
      offer: `${PMD}; client_max_window_bits=${bits}`,
      client: { clientMaxWindowBits: bits },
      response: `${PMD}; client_max_window_bits=${bits}`,
    });
  }
  list.push(
    {
      name: 'client_max_window_bits without a value, limited to 10 by the server',
      offer: `${PMD}; client_max_window_bits`,
      client: { clientMaxWindowBits: true },
      response: `${PMD}; client_max_window_bits=10`,
      server: { clientMaxWindowBits: 10 },
    },
    {
      name: 'server_no_context_takeover and client_no_context_takeover',
      offer: `${PMD}; server_no_context_takeover; client_no_context_takeover`,
      client: { serverNoContextTakeover: true, clientNoContextTakeover: true },
      response: `${PMD}; server_no_context_takeover; client_no_context_takeover`,
      serverResponse: `${PMD}; server_no_context_takeover`,
    },
    {
      name: 'client_no_context_takeover and client_max_window_bits=9',
      offer: `${PMD}; client_no_context_takeover; client_max_window_bits=9`,
      client: { clientNoContextTakeover: true, clientMaxWindowBits: 9 },
      response: `${PMD}; client_no_context_takeover; client_max_window_bits=9`,
      serverResponse: `${PMD}; client_max_window_bits=9`,
    },
    {
      name: 'client_no_context_takeover and client_max_window_bits=15',
      offer: `${PMD}; client_no_context_takeover; client_max_window_bits=15`,
      client: { clientNoContextTakeover: true, clientMaxWindowBits: 15 },
      response: `${PMD}; client_no_context_takeover; client_max_window_bits=15`,
      serverResponse: `${PMD}; client_max_window_bits=15`,
    },
    {
      name: 'server_no_context_takeover and server_max_window_bits=9',
      offer: `${PMD}; server_no_context_takeover; server_max_window_bits=9`,
      client: { serverNoContextTakeover: true, serverMaxWindowBits: 9 },
      response: `${PMD}; server_no_context_takeover; server_max_window_bits=9`,
    },
    {
      name: 'all four parameters',
      offer: `${PMD}; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=11`,
      client: {
        serverNoContextTakeover: true,
        clientNoContextTakeover: true,
        serverMaxWindowBits: 10,
        clientMaxWindowBits: 11,
      },
      response: `${PMD}; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=11`,
      serverResponse: `${PMD}; server_no_context_takeover; server_max_window_bits=10; client_max_window_bits=11`,
    },
    {
      name: 'server_max_window_bits=12 and client_max_window_bits without a value',
      offer: `${PMD}; server_max_window_bits=12; client_max_window_bits`,
      client: { serverMaxWindowBits: 12, clientMaxWindowBits: true },
      response: `${PMD}; server_max_window_bits=12`,
    },
    {
      name: 'two offers, the first accepted',
      offer: `${PMD}; server_max_window_bits=10, ${PMD}`,
      client: [{ serverMaxWindowBits: 10 }, {}],
      response: `${PMD}; server_max_window_bits=10`,
    },
    {
      name: 'two offers, the first invalid (server_max_window_bits=16) and declined, the second accepted',
      offer: `${PMD}; server_max_window_bits=16, ${PMD}; client_no_context_takeover`,
      client: {},
      response: '',
      serverResponse: PMD,
      directions: ['server'],
    },
    {
      name: 'two offers, the server accepts the second',
      offer: `${PMD}; server_no_context_takeover; server_max_window_bits=10, ${PMD}; client_no_context_takeover`,
      client: [{ serverNoContextTakeover: true, serverMaxWindowBits: 10 }, { clientNoContextTakeover: true }],
      response: `${PMD}; client_no_context_takeover`,
      directions: ['client'],
    },
    {
      // zlib has no 8-bit raw window: a side may still agree to 8 and send its messages
      // uncompressed, or decline the offer (both are valid RFC 7692 behaviour).
      name: 'server_max_window_bits=8',
      offer: `${PMD}; server_max_window_bits=8`,
      client: { serverMaxWindowBits: 8 },
      response: `${PMD}; server_max_window_bits=8`,
      mayDecline: true,
    },
    {
      name: 'client_max_window_bits=8',
      offer: `${PMD}; client_max_window_bits=8`,
      client: { clientMaxWindowBits: 8 },
      response: `${PMD}; client_max_window_bits=8`,
      mayDecline: true,
    },
    {
      name: 'plain offer, the server limits its own window to 10',
      offer: PMD,
      client: {},
      response: `${PMD}; server_max_window_bits=10`,
      server: { serverMaxWindowBits: 10 },
    },
    {
      name: 'plain offer, the server asks for client_no_context_takeover',
      offer: PMD,
      client: {},
      response: `${PMD}; client_no_context_takeover`,
      server: { clientNoContextTakeover: true },
    },
    {
      name: 'plain offer, the server adds server_no_context_takeover',
      offer: PMD,
      client: {},
      response: `${PMD}; server_no_context_takeover`,
      server: { serverNoContextTakeover: true },
    },
    {
      name: 'server_max_window_bits=12 requested, the server answers 9',
      offer: `${PMD}; server_max_window_bits=12`,
      client: { serverMaxWindowBits: 12 },
      response: `${PMD}; server_max_window_bits=9`,
      server: { serverMaxWindowBits: 9 },
    },
  );
  // Our client's default offer lets the server choose the client's window (RFC 7692
  // §7.1.2.2): every window, with and without client_no_context_takeover, is agreed and used.
  for (let bits = 8; bits <= 15; bits++) {
    for (const nct of [false, true]) {
      const answer = `${PMD}; ${nct ? 'client_no_context_takeover; ' : ''}client_max_window_bits=${bits}`;
      list.push({
        name: `the default offer; the server asks for client_max_window_bits=${bits}${nct ? ' and client_no_context_takeover' : ''}`,
        offer: `${PMD}; client_max_window_bits`,
        client: {},
        defaultOffer: true,
        response: answer,
        server: { clientMaxWindowBits: bits, clientNoContextTakeover: nct },
      });
    }
  }
  return list;
}

/** Offers our server must decline (RFC 7692 §7.1: invalid parameters decline that offer). */
const DECLINED = [
  ['server_max_window_bits=7 (below 8)', `${PMD}; server_max_window_bits=7`],
  ['client_max_window_bits=16 (above 15)', `${PMD}; client_max_window_bits=16`],
  ['an unknown parameter', `${PMD}; foo=bar`],
  ['a duplicated parameter', `${PMD}; server_no_context_takeover; server_no_context_takeover`],
  ['server_max_window_bits without a value', `${PMD}; server_max_window_bits`],
  ['a value on server_no_context_takeover', `${PMD}; server_no_context_takeover=1`],
  ['server_max_window_bits=010 (leading zero)', `${PMD}; server_max_window_bits=010`],
  ['only an unknown extension', 'x-webkit-deflate-frame'],
] as const;

/** Answers our client must refuse (failing with 1010, RFC 6455 §4.1, RFC 7692 §7.1). */
const REFUSED: Array<[string, string, PerMessageDeflateOptions]> = [
  ['server_max_window_bits=16', `${PMD}; server_max_window_bits=16`, {}],
  ['an unknown parameter', `${PMD}; foo`, {}],
  [
    'client_max_window_bits that was not offered',
    `${PMD}; client_max_window_bits=10`,
    { clientMaxWindowBits: false },
  ],
  [
    'client_max_window_bits=16 for the default offer',
    `${PMD}; client_max_window_bits=16`,
    { clientMaxWindowBits: true },
  ],
  ['an extension that was not offered', 'x-foo', {}],
  ['permessage-deflate twice', `${PMD}, ${PMD}`, {}],
  [
    'server_max_window_bits larger than requested',
    `${PMD}; server_max_window_bits=12`,
    { serverMaxWindowBits: 10 },
  ],
  ['no server_no_context_takeover although it was requested', PMD, { serverNoContextTakeover: true }],
  ['client_max_window_bits without a value', `${PMD}; client_max_window_bits`, { clientMaxWindowBits: true }],
];

function sameExtension(a: string, b: string): boolean {
  const [x] = parseExtensionHeader(a);
  const [y] = parseExtensionHeader(b);
  if (x === undefined || y === undefined) return x === y;
  if (x.name !== y.name || x.params.size !== y.params.size) return false;
  for (const [k, v] of x.params) if (y.params.get(k) !== v) return false;
  return true;
}

function offerText(o: PerMessageDeflateOptions | PerMessageDeflateOptions[]): PerMessageDeflateOptions[] {
  return Array.isArray(o) ? o : [o];
}

/** Our client's options for a scenario's offer (see Scenario.client). */
function clientOptions(s: Scenario): PerMessageDeflateOptions[] {
  const list = offerText(s.client);
  return s.defaultOffer ? list : list.map((o) => ({ clientMaxWindowBits: false, ...o }));
}

export function deflateParamCases(): Case[] {
  const cases: Case[] = [];
  scenarios().forEach((s, i) => {
    const n = i + 1;
    const deflate = {
      offer: s.offer,
      // threshold 0: our side compresses every message, even 16 bytes.
      client: clientOptions(s).map((o) => ({ ...o, threshold: 0 })),
      response: s.response,
      server: { ...s.server, threshold: 0 },
      ...(s.mayDecline ? { mayDecline: true } : {}),
    };
    const expectedServerResponse = s.serverResponse ?? s.response;
    const check = (
      p: import('../harness/peer.js').Peer,
      d: Direction,
    ): Array<{ outcome: Outcome; note: string }> => {
      const out: Array<{ outcome: Outcome; note: string }> = [];
      if (p.deflate === undefined) return out; // declined (allowed for this scenario)
      if (d === 'server' && !sameExtension(p.negotiated, expectedServerResponse)) {
        out.push({
          outcome: 'NON-STRICT',
          note: `answered "${p.negotiated}", expected "${expectedServerResponse}"`,
        });
      }
      const plain = p.items.filter((it) => (it.type === 'text' || it.type === 'binary') && !it.compressed);
      // A side whose agreed window is 8 bits may send everything uncompressed.
      if (plain.length > 0 && p.deflate.config.inflateBits > 8)
        out.push({ outcome: 'NON-STRICT', note: `${plain.length} echo(es) not compressed` });
      return out;
    };
    const sets = [
      { sub: 1, type: 'text' as const, how: 'each in one frame', opts: {} },
      {
        sub: 2,
        type: 'binary' as const,
        how: 'fragmented into frames of 1, 37, 512 and 4096 bytes in turn',
        opts: { fragmentSize: [1, 37, 512, 4096] },
      },
    ];
    for (const set of sets) {
      // Each size twice in a row: with context takeover the second refers back to the first.
      const msgs: Buffer[] = [];
      DEFLATE_SIZES.forEach((size, k) => {
        const [m] = series(set.type, size, 1, 300 + k);
        msgs.push(m!, m!);
      });
      const echo: ExpectedItem[] = msgs.map((m) => (set.type === 'text' ? text(m) : binary(m)));
      cases.push(
        defineCase({
          id: `13.${n}.${set.sub}`,
          family: 13,
          description: `Offer "${s.offer}" (${s.name})${s.response ? `; the fuzzing server answers "${s.response}"` : ''}. Send ${msgs.length} compressed ${set.type} messages of 16 B to 128 KiB (each size twice), ${set.how}.`,
          directions: s.directions ?? ['server', 'client'],
          run: async (p) => {
            for (const m of msgs) await p.sendMessage(set.type, m, { compress: true, ...set.opts });
          },
          expect: { echo },
          options: { deflate, timeout: 10_000 },
          check,
        }),
      );
    }
  });

  DECLINED.forEach(([what, offer], i) => {
    cases.push(
      defineCase({
        id: `13.${scenarios().length + 1}.${i + 1}`,
        family: 13,
        description: `Offer "${offer}" (${what}): our server declines it and messages go uncompressed.`,
        directions: ['server'],
        run: (p) => p.sendText('uncompressed after a declined offer'),
        expect: { echo: [text('uncompressed after a declined offer')] },
        options: {
          deflate: { offer, client: {}, response: '', server: { threshold: 0 }, expectDecline: true },
        },
      }),
    );
  });
  REFUSED.forEach(([what, response, client], i) => {
    const offer = [
      PMD,
      ...(client.serverMaxWindowBits ? [`server_max_window_bits=${client.serverMaxWindowBits}`] : []),
      ...(client.serverNoContextTakeover ? ['server_no_context_takeover'] : []),
      // Offered without a value unless the options say false.
      ...(client.clientMaxWindowBits !== false ? ['client_max_window_bits'] : []),
    ].join('; ');
    cases.push(
      defineCase({
        id: `13.${scenarios().length + 2}.${i + 1}`,
        family: 13,
        description: `Our client offers "${offer}"; the fuzzing server answers with ${what} ("${response}"): the client fails the connection (1010) without sending a frame.`,
        directions: ['client'],
        run: async () => {},
        expect: { fail: { codes: [1010], noFrame: true } },
        options: { deflate: { offer, client: { ...client }, response, server: {} } },
      }),
    );
  });
  return cases;
}
