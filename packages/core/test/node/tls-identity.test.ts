import type { PeerCertificate } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { checkServerIdentity } from '../../src/node/tls-identity.js';

const cert = (subjectaltname: string) =>
  ({ subject: { CN: 'localhost' }, subjectaltname }) as unknown as PeerCertificate;

describe('checkServerIdentity', () => {
  it('matches an IPv6 host against a certificate address written uncompressed or compressed', () => {
    expect(checkServerIdentity('::1', cert('DNS:localhost, IP Address:0:0:0:0:0:0:0:1'))).toBeUndefined();
    expect(checkServerIdentity('::1', cert('IP Address:::1'))).toBeUndefined();
    expect(checkServerIdentity('2001:db8::7', cert('IP Address:2001:DB8:0:0:0:0:0:7'))).toBeUndefined();
  });

  it('still refuses a different address, and keeps the standard rules for names and IPv4', () => {
    expect(checkServerIdentity('::2', cert('IP Address:0:0:0:0:0:0:0:1'))).toBeInstanceOf(Error);
    expect(checkServerIdentity('::1', cert('DNS:localhost, IP Address:127.0.0.1'))).toBeInstanceOf(Error);
    expect(checkServerIdentity('127.0.0.2', cert('IP Address:127.0.0.1'))).toBeInstanceOf(Error);
    expect(checkServerIdentity('localhost', cert('DNS:localhost'))).toBeUndefined();
    expect(checkServerIdentity('evil.example', cert('DNS:localhost'))).toBeInstanceOf(Error);
  });
});
