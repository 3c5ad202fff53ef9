import { connect as tlsConnect } from 'node:tls';
import { HandshakeError } from '@wskit/core';
import { errorMessage } from './util.js';

/** OpenSSL verification codes that mean "signed by nobody we trust". */
const UNTRUSTED = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
]);

/** Whether `host:port` completes a TLS handshake (certificate not checked), within 2 s. */
export function speaksTls(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ host, port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
    const done = (yes: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(yes);
    };
    const timer = setTimeout(() => done(false), 2000);
    socket.once('secureConnect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * The message for a connection that could not be opened, with a hint in words when the
 * cause is a common mistake: an untrusted certificate, ws:// to a TLS port, wss:// to a
 * plain one, a handshake that timed out.
 */
export async function explainConnectError(url: string, err: unknown): Promise<string> {
  if (err instanceof HandshakeError) {
    const res = err.response;
    if (res !== undefined && res.status !== 101 && res.status !== 0) {
      const status = `${res.status}${res.statusText ? ` ${res.statusText}` : ''}`;
      const body = res.body.trim().split(/\r?\n/, 1)[0]?.slice(0, 200) ?? '';
      return `wskit: handshake failed: the server answered ${status}${body ? `: ${body}` : ''}`;
    }
    if (/timed out/i.test(err.message)) {
      return `wskit: handshake failed: ${err.message}\n  hint: the server accepted the TCP connection but did not answer the upgrade in time; raise --handshake-timeout, or check that ${url} is a WebSocket endpoint`;
    }
    return `wskit: handshake failed: ${err.message}`;
  }
  const code = (err as NodeJS.ErrnoException | undefined)?.code ?? '';
  const message = err instanceof Error ? err.message : String(err);
  // OpenSSL's messages carry a long error stack; its reason ("wrong version number") says it.
  const ssl = /SSL routines:[^:]*:([^:]+):/.exec(message);
  const base = `wskit: cannot connect to ${url}: ${ssl ? `TLS handshake failed (${ssl[1]})` : errorMessage(err)}`;
  const target = new URL(url);
  const hostPort = `${target.hostname}:${target.port || (target.protocol === 'wss:' ? 443 : 80)}`;
  if (UNTRUSTED.has(code)) {
    return `${base}\n  hint: the server's certificate is self-signed or signed by a CA this machine does not trust; trust it with --ca FILE (the PEM certificate of that CA, or the self-signed certificate itself), or skip the check with -k/--insecure (for tests only)`;
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return `${base}\n  hint: the certificate is valid but not for the host name "${target.hostname}"; connect with a name it lists, or skip the check with -k/--insecure (for tests only)`;
  }
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') {
    return `${base}\n  hint: the server's certificate is outside its validity period (check the clocks), or use -k/--insecure (for tests only)`;
  }
  if (
    target.protocol === 'wss:' &&
    /wrong version number|packet length too long|unknown protocol/i.test(message)
  ) {
    return `${base}\n  hint: ${hostPort} answered in plain text, not TLS: the server does not use TLS on this port; use ws:// instead of wss://`;
  }
  if (
    target.protocol === 'ws:' &&
    (code === 'ECONNRESET' || /socket hang up/i.test(message)) &&
    (await speaksTls(target.hostname.replace(/^\[|\]$/g, ''), Number(target.port || 80)))
  ) {
    return `${base}\n  hint: ${hostPort} speaks TLS: the server expects encrypted connections on this port; use wss:// instead of ws://`;
  }
  return base;
}
