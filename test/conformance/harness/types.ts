/**
 * The vocabulary of the conformance suite: cases, expectations, outcomes and results.
 * A "direction" names the side of wskit under test: 'server' means our WebSocketServer
 * faces a fuzzing client, 'client' means our connect() faces a fuzzing server.
 */
import type { PerMessageDeflateOptions } from '@wskit/core';
import type { Peer } from './peer.js';

export type Direction = 'server' | 'client';

/** How the WebSocket is carried: an HTTP/1.1 Upgrade on TCP, or an RFC 8441 stream over h2c. */
export type Transport = 'http/1.1' | 'h2';

export type Outcome = 'OK' | 'NON-STRICT' | 'INFORMATIONAL' | 'UNIMPLEMENTED' | 'FAILED';

/** Worst first: the order in which outcomes override each other. */
export const OUTCOME_RANK: Record<Outcome, number> = {
  OK: 0,
  INFORMATIONAL: 1,
  'NON-STRICT': 2,
  UNIMPLEMENTED: 3,
  FAILED: 4,
};

/** Something our side sends back that a case expects: an echoed message or a pong. */
export interface ExpectedItem {
  type: 'text' | 'binary' | 'pong';
  data: Buffer;
}

export interface Expectation {
  /**
   * Messages (in order) and pongs (in order) our side must send back. Messages and pongs
   * are compared as two sequences: when a pong goes out relative to the echo of an
   * earlier message is timing of the application, not protocol. Default: nothing.
   */
  echo?: ExpectedItem[];
  /** Other echo sequences that are acceptable but not strict (graded NON-STRICT). */
  echoNonStrict?: ExpectedItem[][];
  /**
   * The closing handshake is clean and our side's Close carries one of these codes
   * (null: a Close without a status code). Default [1000] (the peer closes with 1000).
   */
  close?: Array<number | null>;
  /** Close codes accepted as NON-STRICT. */
  closeNonStrict?: Array<number | null>;
  /**
   * Our side must fail the connection: a Close with one of `codes` (OK), another error
   * code or a TCP drop without a Close (NON-STRICT). `true` means [1002].
   * `noFrame`: the failure comes during the opening handshake (RFC 6455 §4.1: the
   * connection was never established), so a TCP drop without any frame is the strict
   * answer and a Close frame fails the case; `codes` are then what connect() rejects with.
   */
  fail?: true | { codes: number[]; noFrame?: boolean };
  /**
   * Fail-fast: the failure must be seen before the peer set this mark (usually right
   * before it sends the rest of a message). Seen only later: NON-STRICT.
   */
  failBefore?: string;
}

/** permessage-deflate setup of a case (families 12 and 13). */
export interface DeflateSetup {
  /** The Sec-WebSocket-Extensions offer: sent as is by the fuzzing client; expected from our client. */
  offer: string;
  /** How our client is configured so that it makes `offer` (client direction). */
  client: PerMessageDeflateOptions | PerMessageDeflateOptions[];
  /** The fuzzing server's answer (client direction); '' declines. */
  response: string;
  /** Our server's permessage-deflate options (server direction). */
  server: PerMessageDeflateOptions;
  /** Server direction: our server must decline the offer (answer without the extension). */
  expectDecline?: boolean;
  /** Server direction: declining the offer is acceptable as well as accepting it. */
  mayDecline?: boolean;
}

export interface CaseOptions {
  maxFrameSize?: number;
  maxMessageSize?: number;
  maxFragments?: number;
  maxBufferedAmount?: number;
  closeTimeout?: number;
  deflate?: DeflateSetup;
  /** How long to wait for each awaited event (echoes, the Close, the TCP close). Default 5000 ms. */
  timeout?: number;
  /**
   * The peer goes silent once our side closes: it neither answers our Close nor closes TCP,
   * so our side's close timeout must end the connection.
   */
  silentPeer?: boolean;
  /** The fuzzing server never closes TCP after the closing handshake (client direction). */
  serverKeepsTcpOpen?: boolean;
}

export interface Case {
  id: string;
  family: number;
  description: string;
  directions: Direction[];
  run: (peer: Peer) => Promise<void>;
  expect: Expectation;
  /** Recorded, never failing. */
  informational?: boolean;
  options?: CaseOptions;
  /** Extra checks on what was observed; returns problems (empty: fine). */
  check?: (peer: Peer, direction: Direction) => Array<{ outcome: Outcome; note: string }>;
}

export interface ObservedFrame {
  opcode: number;
  fin: boolean;
  rsv: number;
  length: number;
  /** First bytes of the (unmasked) payload, hex. */
  head: string;
  /** ms since the connection opened. */
  at: number;
}

export interface CaseResult {
  id: string;
  family: number;
  direction: Direction;
  description: string;
  expectation: string;
  informational: boolean;
  outcome: Outcome;
  notes: string[];
  frames: ObservedFrame[];
  framesTotal: number;
  /** Our side's Close: code (null: none in the frame) and reason. */
  close: { code: number | null; reason: string } | null;
  /** Both Close frames were exchanged before TCP closed. */
  closingHandshake: boolean;
  /** Who ended TCP first: 'impl' (our side), 'peer', or 'timeout' (peer gave up). */
  tcpClosedFirst: 'impl' | 'peer' | 'timeout' | 'none';
  /** RFC 6455 §7.1.1: the server closes TCP first (judged on clean closes). */
  tcpOrderOk: boolean;
  negotiated?: string;
  durationMs: number;
}
