import { isIPv6, SocketAddress } from 'node:net';
import { checkServerIdentity as nodeCheckServerIdentity, type PeerCertificate } from 'node:tls';

function canonicalIPv6(address: string): string | undefined {
  try {
    return new SocketAddress({ address, family: 'ipv6' }).address;
  } catch {
    return undefined;
  }
}

/**
 * `tls.checkServerIdentity`, except that an IPv6 host also matches a certificate IP
 * address written in another textual form. Node 22 compares "::1" with the
 * "0:0:0:0:0:0:0:1" it prints for the certificate and refuses a valid certificate; Node 20
 * and 24 don't. Only addresses that are equal as addresses are accepted.
 */
export function checkServerIdentity(host: string, cert: PeerCertificate): Error | undefined {
  const error = nodeCheckServerIdentity(host, cert);
  if (error === undefined || !isIPv6(host)) return error;
  const wanted = canonicalIPv6(host);
  const ips = (cert.subjectaltname ?? '')
    .split(', ')
    .filter((entry) => entry.startsWith('IP Address:'))
    .map((entry) => entry.slice('IP Address:'.length));
  return ips.some((ip) => isIPv6(ip) && canonicalIPv6(ip) === wanted) ? undefined : error;
}
