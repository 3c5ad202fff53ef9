import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HandshakeError } from '../src/protocol/errors.js';
import {
  buildAcceptResponse,
  buildRejectionResponse,
  buildRequestHeaders,
  computeAccept,
  generateKey,
  isValidKey,
  type RequestHead,
  STATUS_TEXT,
  selectSubprotocol,
  validateProtocols,
  validateRequest,
  validateResponse,
  WS_GUID,
} from '../src/protocol/handshake.js';

// RFC 6455 §1.3
const RFC_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const RFC_ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';

function request(overrides: Partial<RequestHead> = {}, headers: RequestHead['headers'] = {}): RequestHead {
  return {
    method: 'GET',
    httpVersion: '1.1',
    url: '/chat',
    ...overrides,
    headers: {
      host: 'server.example.com',
      upgrade: 'websocket',
      connection: 'Upgrade',
      'sec-websocket-key': RFC_KEY,
      'sec-websocket-version': '13',
      ...headers,
    },
  };
}

function rejection(head: RequestHead): HandshakeError {
  try {
    validateRequest(head);
  } catch (error) {
    expect(error).toBeInstanceOf(HandshakeError);
    const e = error as HandshakeError;
    // Every message is sent as the body of the refusal: a capitalised sentence.
    expect(e.message).toMatch(/^[A-Z].*\.$/s);
    expect(e.response).toBeUndefined();
    return e;
  }
  throw new Error('expected the request to be rejected');
}

describe('keys', () => {
  it('computes the RFC 6455 §1.3 example', () => {
    expect(WS_GUID).toBe('258EAFA5-E914-47DA-95CA-C5AB0DC85B11');
    expect(computeAccept(RFC_KEY)).toBe(RFC_ACCEPT);
  });

  it('generates fresh 16-byte base64 keys', () => {
    const keys = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const key = generateKey();
      expect(key).toMatch(/^[A-Za-z0-9+/]{22}==$/);
      expect(Buffer.from(key, 'base64')).toHaveLength(16);
      expect(isValidKey(key)).toBe(true);
      keys.add(key);
    }
    expect(keys.size).toBe(50);
  });

  it('isValidKey accepts exactly base64 of 16 bytes', () => {
    expect(isValidKey(RFC_KEY)).toBe(true);
    expect(isValidKey('AAAAAAAAAAAAAAAAAAAAAA==')).toBe(true);
    expect(isValidKey('AAAAAAAAAAAAAAAAAAAA')).toBe(false); // 15 bytes
    expect(isValidKey('AAAAAAAAAAAAAAAAAAAAAAA=')).toBe(false); // 17 bytes
    expect(isValidKey('AAAAAAAAAAAAAAAAAAAAAA')).toBe(false); // unpadded
    expect(isValidKey('AAAAAAAAAAAAAAAAAAAAA!==')).toBe(false);
    expect(isValidKey('AAAAAAAAAAAAAAAAAAAAA-==')).toBe(false); // base64url is not base64
    expect(isValidKey(` ${RFC_KEY}`)).toBe(false);
    expect(isValidKey('')).toBe(false);
  });
});

describe('validateRequest', () => {
  it('accepts the RFC 6455 §1.2 example request', () => {
    const result = validateRequest(
      request(
        {},
        {
          origin: 'http://example.com',
          'sec-websocket-protocol': 'chat, superchat',
        },
      ),
    );
    expect(result).toEqual({
      key: RFC_KEY,
      protocols: ['chat', 'superchat'],
      extensions: [],
      origin: 'http://example.com',
      host: 'server.example.com',
    });
  });

  it('reports origin and protocols as absent when not sent', () => {
    const result = validateRequest(request());
    expect(result.origin).toBeUndefined();
    expect(result.protocols).toEqual([]);
    expect(result.extensions).toEqual([]);
  });

  describe('method', () => {
    for (const method of ['POST', 'PUT', 'HEAD', 'get', 'CONNECT']) {
      it(`answers ${method} with 405 and Allow: GET`, () => {
        const error = rejection(request({ method }));
        expect(error.status).toBe(405);
        expect(error.headers).toEqual({ Allow: 'GET' });
        expect(error.message).toContain(method);
      });
    }
  });

  describe('HTTP version', () => {
    it('refuses HTTP/1.0 and HTTP/0.9 with 400', () => {
      for (const httpVersion of ['1.0', '0.9']) {
        const error = rejection(request({ httpVersion }));
        expect(error.status).toBe(400);
        expect(error.message).toContain(`HTTP/${httpVersion}`);
      }
    });

    it('refuses an unparseable version with 400', () => {
      expect(rejection(request({ httpVersion: 'x' })).status).toBe(400);
      expect(rejection(request({ httpVersion: '' })).status).toBe(400);
    });

    it('accepts HTTP/1.1 and later', () => {
      for (const httpVersion of ['1.1', '1.2', '2.0', 'HTTP/1.1']) {
        expect(validateRequest(request({ httpVersion })).key).toBe(RFC_KEY);
      }
    });
  });

  it('refuses an empty request target with 400', () => {
    expect(rejection(request({ url: '' })).status).toBe(400);
  });

  it('refuses a missing or empty Host with 400', () => {
    expect(rejection(request({}, { host: undefined })).message).toMatch(/Host/);
    expect(rejection(request({}, { host: '' })).status).toBe(400);
  });

  describe('Upgrade', () => {
    it('accepts "websocket" in any case and inside a list', () => {
      for (const upgrade of [
        'websocket',
        'WebSocket',
        'WEBSOCKET',
        'h2c, websocket',
        'foo,WebSocket , bar',
      ]) {
        expect(validateRequest(request({}, { upgrade })).key, upgrade).toBe(RFC_KEY);
      }
      expect(validateRequest(request({}, { upgrade: ['h2c', 'websocket'] })).key).toBe(RFC_KEY);
    });

    it('refuses a missing or different Upgrade with 400', () => {
      for (const upgrade of [undefined, '', 'h2c', 'websocket2', 'web socket', 'websocket/13']) {
        const error = rejection(request({}, { upgrade }));
        expect(error.status, String(upgrade)).toBe(400);
        expect(error.message).toMatch(/Upgrade/);
      }
    });
  });

  describe('Connection', () => {
    it('accepts "upgrade" in any case and inside a list', () => {
      for (const connection of [
        'Upgrade',
        'upgrade',
        'UPGRADE',
        'keep-alive, Upgrade',
        'Upgrade,keep-alive',
      ]) {
        expect(validateRequest(request({}, { connection })).key, connection).toBe(RFC_KEY);
      }
    });

    it('refuses a missing or different Connection with 400', () => {
      for (const connection of [
        undefined,
        'keep-alive',
        'close',
        'upgrade-insecure-requests',
        'keep-alive; Upgrade',
      ]) {
        const error = rejection(request({}, { connection }));
        expect(error.status, String(connection)).toBe(400);
        expect(error.message).toMatch(/Connection/);
      }
    });
  });

  describe('Sec-WebSocket-Key', () => {
    it('refuses a missing key with 400', () => {
      const error = rejection(request({}, { 'sec-websocket-key': undefined }));
      expect(error.status).toBe(400);
      expect(error.message).toMatch(/Sec-WebSocket-Key header is missing/);
    });

    it('refuses keys that are not base64 of 16 bytes with 400', () => {
      for (const key of [
        'short',
        'AAAAAAAAAAAAAAAAAAAA', // 15 bytes
        'AAAAAAAAAAAAAAAAAAAAAAA=', // 17 bytes
        'AAAAAAAAAAAAAAAAAAAAAA', // no padding
        'AAAAAAAAAAAAAAAAAAAA*A==',
        `${RFC_KEY}, ${RFC_KEY}`, // the header sent twice, as node joins it
      ]) {
        const error = rejection(request({}, { 'sec-websocket-key': key }));
        expect(error.status, key).toBe(400);
        expect(error.message).toMatch(/16 bytes/);
      }
    });

    it('ignores surrounding whitespace', () => {
      expect(validateRequest(request({}, { 'sec-websocket-key': ` ${RFC_KEY} ` })).key).toBe(RFC_KEY);
    });
  });

  describe('Sec-WebSocket-Version', () => {
    for (const version of [undefined, '', '8', '12', '14', '13, 8', 'thirteen']) {
      it(`answers version ${JSON.stringify(version)} with 426 and the supported version`, () => {
        const error = rejection(request({}, { 'sec-websocket-version': version }));
        expect(error.status).toBe(426);
        expect(error.headers).toEqual({ 'Sec-WebSocket-Version': '13' });
        expect(error.message).toMatch(/version 13/);
      });
    }
  });

  describe('Sec-WebSocket-Protocol', () => {
    it('parses a comma list, in order', () => {
      expect(
        validateRequest(request({}, { 'sec-websocket-protocol': 'chat,superchat, v2.chat' })).protocols,
      ).toEqual(['chat', 'superchat', 'v2.chat']);
    });

    it('merges several header lines', () => {
      expect(validateRequest(request({}, { 'sec-websocket-protocol': ['a, b', 'c'] })).protocols).toEqual([
        'a',
        'b',
        'c',
      ]);
    });

    it('ignores empty list elements', () => {
      expect(validateRequest(request({}, { 'sec-websocket-protocol': 'a, ,b,' })).protocols).toEqual([
        'a',
        'b',
      ]);
      expect(validateRequest(request({}, { 'sec-websocket-protocol': '' })).protocols).toEqual([]);
    });

    it('refuses invalid tokens with 400', () => {
      for (const value of ['a b', 'a;b', 'chat, "quoted"', 'a/b', 'é']) {
        const error = rejection(request({}, { 'sec-websocket-protocol': value }));
        expect(error.status, value).toBe(400);
        expect(error.message).toMatch(/Sec-WebSocket-Protocol/);
        expect(error.message).toMatch(/not a valid token/);
      }
    });

    it('refuses duplicates with 400', () => {
      const error = rejection(request({}, { 'sec-websocket-protocol': 'chat, superchat, chat' }));
      expect(error.status).toBe(400);
      expect(error.message).toMatch(/"chat" is requested more than once/);
      // The same protocol in two header lines is a duplicate too.
      expect(rejection(request({}, { 'sec-websocket-protocol': ['chat', 'chat'] })).status).toBe(400);
    });

    it('compares protocols case-sensitively', () => {
      expect(validateRequest(request({}, { 'sec-websocket-protocol': 'chat, Chat' })).protocols).toEqual([
        'chat',
        'Chat',
      ]);
    });
  });

  describe('Sec-WebSocket-Extensions', () => {
    it('parses the offers', () => {
      const { extensions } = validateRequest(
        request(
          {},
          { 'sec-websocket-extensions': 'permessage-deflate; client_max_window_bits, permessage-deflate' },
        ),
      );
      expect(extensions).toEqual([
        { name: 'permessage-deflate', params: [['client_max_window_bits', true]] },
        { name: 'permessage-deflate', params: [] },
      ]);
    });

    it('refuses a malformed header with 400', () => {
      const error = rejection(request({}, { 'sec-websocket-extensions': 'permessage-deflate; =10' }));
      expect(error.status).toBe(400);
      expect(error.message).toMatch(/Sec-WebSocket-Extensions/);
    });
  });

  it('checks in the RFC order: method, version, Host, Upgrade, Connection, key, version', () => {
    const broken = request(
      { method: 'POST', httpVersion: '1.0' },
      {
        host: undefined,
        upgrade: undefined,
        connection: undefined,
        'sec-websocket-key': undefined,
        'sec-websocket-version': '8',
      },
    );
    expect(rejection(broken).status).toBe(405);
    broken.method = 'GET';
    expect(rejection(broken).message).toMatch(/HTTP\/1\.1/);
    broken.httpVersion = '1.1';
    expect(rejection(broken).message).toMatch(/Host/);
    broken.headers.host = 'h';
    expect(rejection(broken).message).toMatch(/Upgrade/);
    broken.headers.upgrade = 'websocket';
    expect(rejection(broken).message).toMatch(/Connection/);
    broken.headers.connection = 'upgrade';
    expect(rejection(broken).message).toMatch(/Sec-WebSocket-Key/);
    broken.headers['sec-websocket-key'] = RFC_KEY;
    expect(rejection(broken).status).toBe(426);
    broken.headers['sec-websocket-version'] = '13';
    expect(validateRequest(broken).host).toBe('h');
  });

  it('finds headers whatever their case', () => {
    const result = validateRequest({
      method: 'GET',
      httpVersion: '1.1',
      headers: {
        Host: 'h',
        Upgrade: 'websocket',
        Connection: 'Upgrade',
        'Sec-WebSocket-Key': RFC_KEY,
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Protocol': 'chat',
        Origin: 'http://o',
      },
    });
    expect(result).toMatchObject({ host: 'h', protocols: ['chat'], origin: 'http://o' });
  });
});

describe('selectSubprotocol', () => {
  it("follows the server's order of preference", () => {
    expect(selectSubprotocol(['b', 'a'], ['a', 'b'])).toBe('a');
    expect(selectSubprotocol(['a', 'b'], ['b', 'a'])).toBe('b');
  });

  it('matches globs and picks the first offered protocol for the most preferred pattern', () => {
    expect(selectSubprotocol(['x', 'chat.v2', 'chat.v1'], ['chat.*'])).toBe('chat.v2');
    expect(selectSubprotocol(['chat.v1', 'graphql-ws'], ['graphql-*', 'chat.*'])).toBe('graphql-ws');
    expect(selectSubprotocol(['anything'], ['*'])).toBe('anything');
    expect(selectSubprotocol(['v10'], ['v?'])).toBeUndefined();
  });

  it('returns undefined when nothing matches or nothing is offered', () => {
    expect(selectSubprotocol(['a'], ['b'])).toBeUndefined();
    expect(selectSubprotocol(['a'], [])).toBeUndefined();
    expect(selectSubprotocol([], ['*'])).toBeUndefined();
  });

  it('is case-sensitive', () => {
    expect(selectSubprotocol(['Chat'], ['chat'])).toBeUndefined();
  });

  it('lets a function choose among the offered protocols', () => {
    const seen: string[][] = [];
    const choose = (offered: string[]) => {
      seen.push(offered);
      return offered[offered.length - 1];
    };
    expect(selectSubprotocol(['a', 'b'], choose)).toBe('b');
    expect(seen).toEqual([['a', 'b']]);
  });

  it('ignores a function answer that was not offered', () => {
    expect(selectSubprotocol(['a', 'b'], () => 'c')).toBeUndefined();
    expect(selectSubprotocol(['a', 'b'], () => null)).toBeUndefined();
    expect(selectSubprotocol(['a', 'b'], () => undefined)).toBeUndefined();
    expect(selectSubprotocol(['a', 'b'], () => 'A')).toBeUndefined();
  });

  it('does not call the function when nothing was offered', () => {
    let called = false;
    expect(
      selectSubprotocol([], () => {
        called = true;
        return 'x';
      }),
    ).toBeUndefined();
    expect(called).toBe(false);
  });

  it('gives the function a copy it may not use to smuggle in a protocol', () => {
    const offered = ['a'];
    expect(
      selectSubprotocol(offered, (list) => {
        list.push('evil');
        return 'evil';
      }),
    ).toBeUndefined();
    expect(offered).toEqual(['a']);
  });
});

describe('buildAcceptResponse', () => {
  it('builds the RFC 6455 §1.3 answer', () => {
    expect(buildAcceptResponse({ key: RFC_KEY })).toBe(
      'HTTP/1.1 101 Switching Protocols\r\n' +
        'Upgrade: websocket\r\n' +
        'Connection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${RFC_ACCEPT}\r\n` +
        '\r\n',
    );
  });

  it('adds the protocol, the extensions and extra headers', () => {
    const text = buildAcceptResponse({
      key: RFC_KEY,
      protocol: 'chat',
      extensions: 'permessage-deflate; server_max_window_bits=10',
      headers: { 'X-Server': 'wskit', 'Set-Cookie': ['a=1', 'b=2'] },
    });
    expect(text).toBe(
      'HTTP/1.1 101 Switching Protocols\r\n' +
        'Upgrade: websocket\r\n' +
        'Connection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${RFC_ACCEPT}\r\n` +
        'Sec-WebSocket-Protocol: chat\r\n' +
        'Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10\r\n' +
        'X-Server: wskit\r\n' +
        'Set-Cookie: a=1\r\n' +
        'Set-Cookie: b=2\r\n' +
        '\r\n',
    );
  });

  it('omits an empty extensions string', () => {
    expect(buildAcceptResponse({ key: RFC_KEY, extensions: '' })).not.toMatch(/Extensions/);
  });

  it('does not let extra headers replace the handshake headers', () => {
    const text = buildAcceptResponse({
      key: RFC_KEY,
      headers: {
        connection: 'close',
        'Sec-WebSocket-Accept': 'forged',
        UPGRADE: 'h2c',
        'Sec-WebSocket-Protocol': 'x',
      },
    });
    expect(text).not.toMatch(/close|forged|h2c|Sec-WebSocket-Protocol/);
    expect(text).toContain(`Sec-WebSocket-Accept: ${RFC_ACCEPT}\r\n`);
  });

  it('rejects header values containing CR or LF', () => {
    expect(() => buildAcceptResponse({ key: RFC_KEY, headers: { 'X-A': 'a\r\nX-Injected: 1' } })).toThrow(
      TypeError,
    );
    expect(() => buildAcceptResponse({ key: RFC_KEY, headers: { 'X-A': ['ok', 'b\n'] } })).toThrow(TypeError);
    expect(() => buildAcceptResponse({ key: RFC_KEY, extensions: 'x\r\n' })).toThrow(TypeError);
  });

  it('rejects invalid header names and protocols', () => {
    expect(() => buildAcceptResponse({ key: RFC_KEY, headers: { 'X A': '1' } })).toThrow(TypeError);
    expect(() => buildAcceptResponse({ key: RFC_KEY, headers: { 'X-A:': '1' } })).toThrow(TypeError);
    expect(() => buildAcceptResponse({ key: RFC_KEY, protocol: 'a b' })).toThrow(TypeError);
    expect(() => buildAcceptResponse({ key: RFC_KEY, protocol: 'a\r\nX: y' })).toThrow(TypeError);
  });
});

describe('buildRejectionResponse', () => {
  it('builds a plain-text refusal', () => {
    expect(buildRejectionResponse(400, 'The Host header is missing.')).toBe(
      'HTTP/1.1 400 Bad Request\r\n' +
        'Connection: close\r\n' +
        'Content-Type: text/plain; charset=utf-8\r\n' +
        'Content-Length: 27\r\n' +
        '\r\n' +
        'The Host header is missing.',
    );
  });

  it('counts Content-Length in bytes', () => {
    const body = 'Zugriff verweigert – ✓ 😀';
    const text = buildRejectionResponse(403, body);
    expect(text).toContain(`Content-Length: ${Buffer.byteLength(body)}\r\n`);
    expect(Buffer.byteLength(body)).toBeGreaterThan(body.length);
    expect(text.endsWith(`\r\n\r\n${body}`)).toBe(true);
    expect(buildRejectionResponse(403, '')).toContain('Content-Length: 0\r\n');
  });

  it('knows the reason phrases of the common statuses', () => {
    const expected: Record<number, string> = {
      400: 'Bad Request',
      401: 'Unauthorized',
      403: 'Forbidden',
      404: 'Not Found',
      405: 'Method Not Allowed',
      408: 'Request Timeout',
      426: 'Upgrade Required',
      429: 'Too Many Requests',
      500: 'Internal Server Error',
      503: 'Service Unavailable',
    };
    for (const [status, text] of Object.entries(expected)) {
      expect(STATUS_TEXT[Number(status)]).toBe(text);
      expect(buildRejectionResponse(Number(status), '')).toMatch(
        new RegExp(`^HTTP/1\\.1 ${status} ${text}\\r\\n`),
      );
    }
  });

  it('leaves the reason phrase empty for other statuses', () => {
    expect(buildRejectionResponse(499, 'x').startsWith('HTTP/1.1 499 \r\n')).toBe(true);
  });

  it('adds extra headers, which may replace Content-Type but not the framing headers', () => {
    const text = buildRejectionResponse(405, 'no', { Allow: 'GET' });
    expect(text).toContain('\r\nAllow: GET\r\n');
    const json = buildRejectionResponse(401, '{}', { 'content-type': 'application/json' });
    expect(json).toContain('\r\ncontent-type: application/json\r\n');
    expect(json).not.toContain('text/plain');
    const forged = buildRejectionResponse(400, 'abc', {
      'Content-Length': '999',
      connection: 'keep-alive',
      'Transfer-Encoding': 'chunked',
    });
    expect(forged).not.toMatch(/999|keep-alive|chunked/);
    expect(forged).toContain('Content-Length: 3\r\n');
  });

  it('has exactly one header/body separator before the body', () => {
    const text = buildRejectionResponse(426, 'Upgrade\r\n\r\nRequired', { 'Sec-WebSocket-Version': '13' });
    const [head, ...rest] = text.split('\r\n\r\n');
    expect(head).toContain('Sec-WebSocket-Version: 13');
    expect(rest.join('\r\n\r\n')).toBe('Upgrade\r\n\r\nRequired');
  });

  it('rejects bad statuses and header injection', () => {
    expect(() => buildRejectionResponse(99, '')).toThrow(RangeError);
    expect(() => buildRejectionResponse(1000, '')).toThrow(RangeError);
    expect(() => buildRejectionResponse(400.5, '')).toThrow(RangeError);
    expect(() => buildRejectionResponse(400, '', { 'X-A': 'a\r\nSet-Cookie: x' })).toThrow(TypeError);
    expect(() => buildRejectionResponse(400, '', { 'X-A': 'a\nb' })).toThrow(TypeError);
    expect(() => buildRejectionResponse(400, '', { 'Bad Name': 'a' })).toThrow(TypeError);
  });
});

describe('buildRequestHeaders', () => {
  it('builds the handshake headers', () => {
    expect(buildRequestHeaders({ key: RFC_KEY })).toEqual({
      Upgrade: 'websocket',
      Connection: 'Upgrade',
      'Sec-WebSocket-Key': RFC_KEY,
      'Sec-WebSocket-Version': '13',
    });
  });

  it('adds host, protocols, extensions and origin', () => {
    expect(
      buildRequestHeaders({
        key: RFC_KEY,
        host: 'server.example.com',
        protocols: ['chat', 'superchat'],
        extensions: 'permessage-deflate; client_max_window_bits',
        origin: 'http://example.com',
      }),
    ).toEqual({
      Host: 'server.example.com',
      Upgrade: 'websocket',
      Connection: 'Upgrade',
      'Sec-WebSocket-Key': RFC_KEY,
      'Sec-WebSocket-Version': '13',
      'Sec-WebSocket-Protocol': 'chat, superchat',
      'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits',
      Origin: 'http://example.com',
    });
  });

  it('omits empty protocol and extension lists', () => {
    const headers = buildRequestHeaders({ key: RFC_KEY, protocols: [], extensions: '' });
    expect(Object.keys(headers)).not.toContain('Sec-WebSocket-Protocol');
    expect(Object.keys(headers)).not.toContain('Sec-WebSocket-Extensions');
  });

  it('merges user headers but never lets them replace the handshake headers', () => {
    const headers = buildRequestHeaders({
      key: RFC_KEY,
      protocols: ['chat'],
      headers: {
        Authorization: 'Bearer t',
        upgrade: 'h2c',
        CONNECTION: 'close',
        'sec-websocket-key': 'forged',
        'Sec-WebSocket-Version': '8',
        'sec-websocket-protocol': 'other',
        'Sec-WebSocket-Extensions': 'x-evil',
      },
    });
    expect(headers).toEqual({
      Authorization: 'Bearer t',
      Upgrade: 'websocket',
      Connection: 'Upgrade',
      'Sec-WebSocket-Key': RFC_KEY,
      'Sec-WebSocket-Version': '13',
      'Sec-WebSocket-Protocol': 'chat',
    });
  });

  it('uses a user Host or Origin only when host/origin is not given', () => {
    expect(
      buildRequestHeaders({ key: RFC_KEY, headers: { origin: 'http://a', Host: 'vhost' } }),
    ).toMatchObject({
      origin: 'http://a',
      Host: 'vhost',
    });
    const explicit = buildRequestHeaders({
      key: RFC_KEY,
      host: 'real',
      origin: 'http://b',
      headers: { origin: 'http://a', host: 'vhost' },
    });
    expect(explicit).toMatchObject({ Host: 'real', Origin: 'http://b' });
    expect(explicit).not.toHaveProperty('origin');
    expect(explicit).not.toHaveProperty('host');
  });

  it('throws SyntaxError for an invalid or repeated protocol', () => {
    for (const protocols of [['a b'], [''], ['chat', 'a,b'], ['é'], ['chat', 'chat']]) {
      expect(() => buildRequestHeaders({ key: RFC_KEY, protocols }), JSON.stringify(protocols)).toThrow(
        SyntaxError,
      );
    }
    expect(() => validateProtocols(['x', 'y'])).not.toThrow();
    expect(() => validateProtocols(['x', 'x'])).toThrow(/more than once/);
  });

  it('throws TypeError for header injection or a bad header name', () => {
    expect(() => buildRequestHeaders({ key: RFC_KEY, headers: { 'X-A': 'a\r\nb: c' } })).toThrow(TypeError);
    expect(() => buildRequestHeaders({ key: RFC_KEY, headers: { 'X A': 'a' } })).toThrow(TypeError);
    expect(() => buildRequestHeaders({ key: RFC_KEY, origin: 'http://a\n' })).toThrow(TypeError);
    expect(() => buildRequestHeaders({ key: RFC_KEY, host: 'a\r\n' })).toThrow(TypeError);
    expect(() => buildRequestHeaders({ key: RFC_KEY, extensions: 'x\n' })).toThrow(TypeError);
  });

  it('produces a request that validateRequest accepts', () => {
    const key = generateKey();
    const headers = buildRequestHeaders({
      key,
      host: 'h:8080',
      protocols: ['a', 'b'],
      extensions: 'permessage-deflate',
      origin: 'http://h:8080',
    });
    const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
    expect(validateRequest({ method: 'GET', httpVersion: '1.1', url: '/', headers: lower })).toEqual({
      key,
      protocols: ['a', 'b'],
      extensions: [{ name: 'permessage-deflate', params: [] }],
      origin: 'http://h:8080',
      host: 'h:8080',
    });
  });
});

describe('validateResponse', () => {
  const ok = (headers: Record<string, string | string[] | undefined> = {}, status = 101) => ({
    status,
    headers: {
      upgrade: 'websocket',
      connection: 'Upgrade',
      'sec-websocket-accept': RFC_ACCEPT,
      ...headers,
    },
  });
  const expected = { key: RFC_KEY, protocols: [] as string[] };

  function failure(res: ReturnType<typeof ok>, exp = expected): HandshakeError {
    try {
      validateResponse(res, exp);
    } catch (error) {
      expect(error).toBeInstanceOf(HandshakeError);
      const e = error as HandshakeError;
      expect(e.response).toBeUndefined();
      expect(e.message).toMatch(/^[A-Z].*\.$/s);
      return e;
    }
    throw new Error('expected the response to be rejected');
  }

  it('accepts the RFC 6455 §1.3 answer', () => {
    expect(validateResponse(ok(), expected)).toEqual({ protocol: undefined, extensions: [] });
  });

  it('fails on a status other than 101, keeping that status', () => {
    for (const status of [200, 400, 403, 426, 302]) {
      const error = failure(ok({}, status));
      expect(error.status).toBe(status);
      expect(error.message).toContain(String(status));
    }
  });

  it('accepts Upgrade and Connection tokens in any case and in lists', () => {
    expect(
      validateResponse(ok({ upgrade: 'WebSocket', connection: 'keep-alive, upgrade' }), expected).protocol,
    ).toBe(undefined);
  });

  it('fails without Upgrade: websocket', () => {
    expect(failure(ok({ upgrade: undefined })).message).toMatch(/Upgrade/);
    expect(failure(ok({ upgrade: 'h2c' })).message).toMatch(/Upgrade/);
  });

  it('fails without Connection: upgrade', () => {
    expect(failure(ok({ connection: undefined })).message).toMatch(/Connection/);
    expect(failure(ok({ connection: 'keep-alive' })).message).toMatch(/Connection/);
  });

  it('fails on a missing or wrong Sec-WebSocket-Accept', () => {
    expect(failure(ok({ 'sec-websocket-accept': undefined })).message).toMatch(/no Sec-WebSocket-Accept/);
    expect(failure(ok({ 'sec-websocket-accept': computeAccept(generateKey()) })).message).toMatch(/wrong/);
    expect(failure(ok({ 'sec-websocket-accept': RFC_ACCEPT.toLowerCase() })).message).toMatch(/wrong/);
    expect(failure(ok(), { key: generateKey(), protocols: [] }).message).toMatch(/wrong/);
  });

  it('tolerates whitespace around the accept value', () => {
    expect(() => validateResponse(ok({ 'sec-websocket-accept': ` ${RFC_ACCEPT} ` }), expected)).not.toThrow();
  });

  describe('subprotocol', () => {
    const offered = { key: RFC_KEY, protocols: ['chat', 'superchat'] };

    it('returns the protocol the server selected among the offered', () => {
      expect(validateResponse(ok({ 'sec-websocket-protocol': 'superchat' }), offered).protocol).toBe(
        'superchat',
      );
      expect(validateResponse(ok({ 'sec-websocket-protocol': ['chat'] }), offered).protocol).toBe('chat');
    });

    it('accepts a server that selects none', () => {
      expect(validateResponse(ok(), offered).protocol).toBeUndefined();
    });

    it('fails when the server selects a protocol that was not offered', () => {
      expect(failure(ok({ 'sec-websocket-protocol': 'other' }), offered).message).toMatch(/not requested/);
      expect(failure(ok({ 'sec-websocket-protocol': 'Chat' }), offered).message).toMatch(/not requested/);
      expect(failure(ok({ 'sec-websocket-protocol': '' }), offered).status).toBe(101);
    });

    it('fails when the server selects a protocol though none was offered', () => {
      expect(failure(ok({ 'sec-websocket-protocol': 'chat' })).message).toMatch(/none was requested/);
    });

    it('fails when the server selects several protocols', () => {
      expect(failure(ok({ 'sec-websocket-protocol': 'chat, superchat' }), offered).message).toMatch(
        /more than one/,
      );
      expect(failure(ok({ 'sec-websocket-protocol': ['chat', 'chat'] }), offered).message).toMatch(
        /more than one/,
      );
    });
  });

  it('returns the parsed extensions without judging them', () => {
    expect(
      validateResponse(ok({ 'sec-websocket-extensions': 'x-unknown; a=1' }), expected).extensions,
    ).toEqual([{ name: 'x-unknown', params: [['a', '1']] }]);
  });

  it('fails on a malformed Sec-WebSocket-Extensions header', () => {
    const error = failure(ok({ 'sec-websocket-extensions': 'permessage-deflate;' }));
    expect(error.message).toMatch(
      /^The server response has an invalid Sec-WebSocket-Extensions header: expected/,
    );
    expect(error.status).toBe(101);
    expect(error.cause).toBeInstanceOf(HandshakeError);
  });

  it('finds headers whatever their case', () => {
    expect(
      validateResponse(
        {
          status: 101,
          headers: { Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Accept': RFC_ACCEPT },
        },
        expected,
      ),
    ).toEqual({ protocol: undefined, extensions: [] });
  });
});

describe('round trip', () => {
  const tchars = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".split('');
  const token = fc.string({ unit: fc.constantFrom(...tchars), minLength: 1, maxLength: 10 });

  it('a server answer built from a valid request is accepted by the client', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(token, { maxLength: 5 }),
        fc.array(fc.oneof(token, fc.constant('*')), { maxLength: 3 }),
        (protocols, supported) => {
          const key = generateKey();
          const requestHeaders = buildRequestHeaders({ key, host: 'h', protocols });
          const head = {
            method: 'GET',
            httpVersion: '1.1',
            headers: Object.fromEntries(Object.entries(requestHeaders).map(([k, v]) => [k.toLowerCase(), v])),
          };
          const validated = validateRequest(head);
          expect(validated.protocols).toEqual(protocols);
          const protocol = selectSubprotocol(validated.protocols, supported);
          const raw = buildAcceptResponse({ key: validated.key, protocol });
          // Parse the raw head back into a status and lower-case headers.
          const [statusLine, ...lines] = raw.slice(0, -4).split('\r\n');
          const headers: Record<string, string> = {};
          for (const line of lines) {
            const colon = line.indexOf(':');
            headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
          }
          expect(statusLine).toBe('HTTP/1.1 101 Switching Protocols');
          expect(validateResponse({ status: 101, headers }, { key, protocols }).protocol).toBe(protocol);
        },
      ),
    );
  });
});
