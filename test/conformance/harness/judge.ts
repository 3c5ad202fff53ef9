/**
 * Grades what the peer observed against a case's expectation, the way Autobahn does:
 * OK (strict), NON-STRICT (acceptable), INFORMATIONAL, UNIMPLEMENTED, FAILED.
 */
import type { CloseInfo } from '@wskit/core';
import type { Peer, ReceivedItem } from './peer.js';
import { type Case, type Direction, type ExpectedItem, OUTCOME_RANK, type Outcome } from './types.js';

export interface Verdict {
  outcome: Outcome;
  notes: string[];
  closingHandshake: boolean;
  tcpClosedFirst: 'impl' | 'peer' | 'timeout' | 'none';
  tcpOrderOk: boolean;
}

const FAILURE_CODES = new Set([1002, 1003, 1007, 1008, 1009, 1010, 1011]);

function describe(items: ReadonlyArray<{ type: string; data: Buffer }>): string {
  if (items.length === 0) return 'nothing';
  const shown = items.slice(0, 6).map((i) => {
    const body =
      i.type === 'text' && i.data.length <= 24
        ? JSON.stringify(i.data.toString('utf8'))
        : `${i.data.length} B`;
    return `${i.type}(${body})`;
  });
  return shown.join(', ') + (items.length > 6 ? `, … (${items.length} in all)` : '');
}

function sameItems(
  got: ReadonlyArray<{ type: string; data: Buffer }>,
  want: readonly ExpectedItem[],
): boolean {
  if (got.length !== want.length) return false;
  return got.every((g, i) => g.type === want[i]!.type && g.data.equals(want[i]!.data));
}

/** Messages and pongs compared as two ordered sequences (see Expectation.echo). */
function echoMatches(got: readonly ReceivedItem[], want: readonly ExpectedItem[]): boolean {
  const isPong = (i: { type: string }) => i.type === 'pong';
  return (
    sameItems(
      got.filter((i) => !isPong(i)),
      want.filter((i) => !isPong(i)),
    ) && sameItems(got.filter(isPong), want.filter(isPong))
  );
}

export function judge(c: Case, direction: Direction, peer: Peer, implInfo: CloseInfo | undefined): Verdict {
  const notes: string[] = [];
  let outcome: Outcome = 'OK';
  const grade = (o: Outcome, note: string) => {
    notes.push(`${o}: ${note}`);
    if (OUTCOME_RANK[o] > OUTCOME_RANK[outcome]) outcome = o;
  };
  const exp = c.expect;

  for (const v of peer.violations) grade('FAILED', v);
  for (const n of peer.notes) notes.push(n);

  const got = peer.items.filter((i) => i.type !== 'ping');
  const pings = peer.items.length - got.length;
  if (pings > 0) notes.push(`our side sent ${pings} ping(s)`);
  const want = exp.echo ?? [];
  if (!echoMatches(got, want)) {
    const alt = (exp.echoNonStrict ?? []).some((w) => echoMatches(got, w));
    grade(alt ? 'NON-STRICT' : 'FAILED', `expected ${describe(want)}, got ${describe(got)}`);
  }

  const implClose = peer.implClose;
  const closingHandshake = implClose !== undefined && peer.peerCloseAt !== undefined && !peer.socketError;
  // Who ended TCP first.
  let tcpClosedFirst: Verdict['tcpClosedFirst'] = 'none';
  if (peer.implEndAt !== undefined && peer.firstEnd === 'impl') {
    tcpClosedFirst = 'impl';
  } else if (peer.gaveUp) {
    tcpClosedFirst = 'timeout';
  } else if (peer.peerEndAt !== undefined) {
    tcpClosedFirst = 'peer';
  }
  // RFC 6455 §7.1.1: the server closes the TCP connection first.
  const serverSide = direction === 'server' ? 'impl' : 'peer';
  // A fuzzing server that never closes TCP leaves the client no choice but to close first;
  // after failing the connection (RFC 6455 §7.1.7) either side may close first.
  // A peer that ended TCP before our side even answered its Close chose the order itself.
  const peerEndedFirst =
    tcpClosedFirst === 'peer' &&
    peer.peerEndAt !== undefined &&
    (implClose === undefined || peer.peerEndAt < implClose.at);
  // A client may close TCP itself once the server has not done so within its closeTimeout
  // (RFC 6455 §7.1.1): not a fault, only a slow (here: loaded) fuzzing server.
  const handshakeDoneAt = Math.max(implClose?.at ?? 0, peer.peerCloseAt ?? 0);
  const clientWaitedOut =
    direction === 'client' &&
    tcpClosedFirst === 'impl' &&
    peer.implEndAt !== undefined &&
    peer.implEndAt - handshakeDoneAt >= 0.9 * (c.options?.closeTimeout ?? 2000);
  const tcpOrderOk =
    tcpClosedFirst === serverSide ||
    peerEndedFirst ||
    clientWaitedOut ||
    (tcpClosedFirst === 'impl' && (exp.fail !== undefined || c.options?.serverKeepsTcpOpen === true));

  if (exp.fail) {
    const codes = exp.fail === true ? [1002] : exp.fail.codes;
    const noFrame = exp.fail !== true && exp.fail.noFrame === true;
    if (noFrame) {
      if (implClose !== undefined)
        grade('FAILED', `sent a Close (${implClose.code ?? 'no code'}) on a connection never established`);
      else if (peer.implEndAt === undefined) grade('FAILED', 'the connection was not failed');
    } else if (implClose !== undefined) {
      const code = implClose.code;
      if (code !== null && codes.includes(code)) {
        // as expected
      } else if (code !== null && FAILURE_CODES.has(code)) {
        grade('NON-STRICT', `failed with ${code}, expected ${codes.join('/')}`);
      } else {
        grade('FAILED', `closed with ${code ?? 'no code'} instead of failing with ${codes.join('/')}`);
      }
    } else if (peer.implEndAt !== undefined) {
      grade('NON-STRICT', `TCP dropped without a Close (expected ${codes.join('/')})`);
    } else {
      grade('FAILED', `the connection was not failed (expected ${codes.join('/')})`);
    }
    if (exp.failBefore !== undefined) {
      const mark = peer.marks.get(exp.failBefore);
      const failedAt = implClose?.at ?? peer.implEndAt;
      if (mark === undefined) grade('FAILED', `the case never reached mark "${exp.failBefore}"`);
      else if (failedAt === undefined || failedAt > mark)
        grade(
          'NON-STRICT',
          `not fail-fast: failed at ${failedAt ?? '-'} ms, after "${exp.failBefore}" (${mark} ms)`,
        );
    }
    if (tcpClosedFirst === 'timeout') grade('FAILED', 'our side never closed the TCP connection');
  } else {
    const allowed = exp.close ?? [1000];
    if (implClose === undefined) {
      grade('FAILED', 'no Close frame from our side');
    } else if (!allowed.includes(implClose.code)) {
      const loose = exp.closeNonStrict ?? [];
      grade(
        loose.includes(implClose.code) ? 'NON-STRICT' : 'FAILED',
        `close code ${implClose.code ?? 'none'}, expected ${allowed.map((c) => c ?? 'none').join('/')}`,
      );
    }
    if (!closingHandshake) grade('FAILED', 'the closing handshake did not complete');
    if (tcpClosedFirst === 'timeout') grade('FAILED', 'our side never closed the TCP connection');
    else if (!tcpOrderOk) {
      if (direction === 'server') grade('FAILED', 'the server did not close TCP first (RFC 6455 §7.1.1)');
      else grade('NON-STRICT', 'the client closed TCP before the server (RFC 6455 §7.1.1)');
    }
    if (implInfo !== undefined && closingHandshake && !implInfo.wasClean)
      grade('FAILED', `our side reported an unclean close (code ${implInfo.code})`);
  }
  if (peer.socketError !== undefined) notes.push(`socket: ${peer.socketError}`);

  for (const p of c.check?.(peer, direction) ?? []) grade(p.outcome, p.note);

  if (c.informational) {
    notes.unshift(`graded ${outcome} (informational case)`);
    outcome = 'INFORMATIONAL';
  }
  return { outcome, notes, closingHandshake, tcpClosedFirst, tcpOrderOk };
}

/** One line describing an expectation, for the report. */
export function describeExpectation(c: Case): string {
  const e = c.expect;
  const parts: string[] = [];
  const echo = e.echo ?? [];
  if (echo.length > 0) parts.push(`echo ${describe(echo)}`);
  if (e.fail) {
    const codes = e.fail === true ? [1002] : e.fail.codes;
    parts.push(`fail ${codes.join('/')}${e.failBefore ? ` before "${e.failBefore}"` : ''}`);
  } else {
    parts.push(`close ${(e.close ?? [1000]).map((c) => c ?? 'empty').join('/')}`);
  }
  return parts.join('; ');
}
