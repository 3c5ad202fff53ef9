/**
 * The `Sec-WebSocket-Extensions` header grammar (RFC 6455 §9.1):
 *
 *   extension-list = 1#extension
 *   extension      = extension-token *( ";" extension-param )
 *   extension-param = token [ "=" ( token / quoted-string ) ]
 *
 * with optional whitespace around the separators, and the rule that a quoted-string value,
 * once unescaped, must itself be a token.
 */
import { HandshakeError } from './errors.js';

/** One parameter: `[name, value]`, where `true` stands for a parameter given without a value. */
export type ExtensionParam = [name: string, value: string | true];

/** One extension offer (or response): its name and parameters, in the order they appeared. */
export interface ExtensionOffer {
  name: string;
  params: ExtensionParam[];
}

// RFC 7230 §3.2.6: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
// "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
const TCHAR = new Uint8Array(128);
for (const ch of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
  TCHAR[ch.charCodeAt(0)] = 1;
}

function isTchar(code: number): boolean {
  return code < 128 && TCHAR[code] === 1;
}

/** Is `value` a non-empty HTTP token (RFC 7230 §3.2.6)? */
export function isToken(value: string): boolean {
  if (value.length === 0) return false;
  for (let i = 0; i < value.length; i++) {
    if (!isTchar(value.charCodeAt(i))) return false;
  }
  return true;
}

const isOws = (code: number) => code === 0x20 || code === 0x09;

function describeChar(ch: string): string {
  const code = ch.charCodeAt(0);
  if (code < 0x20 || code === 0x7f) return `control character 0x${code.toString(16).padStart(2, '0')}`;
  return `character ${JSON.stringify(ch)}`;
}

class Scanner {
  pos = 0;
  constructor(readonly text: string) {}

  get done(): boolean {
    return this.pos >= this.text.length;
  }

  peek(): number {
    return this.pos < this.text.length ? this.text.charCodeAt(this.pos) : -1;
  }

  skipOws(): void {
    while (isOws(this.peek())) this.pos++;
  }

  token(): string {
    const start = this.pos;
    while (isTchar(this.peek())) this.pos++;
    return this.text.slice(start, this.pos);
  }

  fail(problem: string): never {
    throw new HandshakeError(`Invalid Sec-WebSocket-Extensions header: ${problem}.`, { status: 400 });
  }

  /** What is at the current position, for an error message. */
  here(): string {
    if (this.done) return 'the end of the header';
    return `${describeChar(this.text[this.pos]!)} at position ${this.pos + 1}`;
  }

  /** Reads a quoted-string starting at the opening quote and returns its unescaped content. */
  quoted(): string {
    const open = this.pos;
    this.pos++; // opening DQUOTE
    let out = '';
    for (;;) {
      if (this.done) this.fail(`the quoted string starting at position ${open + 1} is not terminated`);
      const code = this.peek();
      const ch = this.text[this.pos]!;
      if (code === 0x22) {
        this.pos++;
        return out;
      }
      if (code === 0x5c) {
        // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
        this.pos++;
        if (this.done)
          this.fail(`the quoted string starting at position ${open + 1} ends with a lone backslash`);
        const escaped = this.text[this.pos]!;
        const ec = escaped.charCodeAt(0);
        if ((ec < 0x20 && ec !== 0x09) || ec === 0x7f) {
          this.fail(`unexpected ${describeChar(escaped)} at position ${this.pos + 1} in a quoted string`);
        }
        out += escaped;
        this.pos++;
        continue;
      }
      if ((code < 0x20 && code !== 0x09) || code === 0x7f) {
        this.fail(`unexpected ${describeChar(ch)} at position ${this.pos + 1} in a quoted string`);
      }
      out += ch;
      this.pos++;
    }
  }
}

/**
 * Parse a `Sec-WebSocket-Extensions` header value. Several header lines may be given as an
 * array (they are one comma-separated list). Empty list elements (`a, , b`) are ignored and
 * an absent or blank header yields `[]` (RFC 7230 §7: recipients accept empty elements).
 * Names and values are returned exactly as written (no case folding).
 *
 * Throws `HandshakeError` (status 400) naming the problem on a syntax error.
 */
export function parseExtensions(header: string | readonly string[] | undefined): ExtensionOffer[] {
  if (header === undefined) return [];
  const text = typeof header === 'string' ? header : header.join(', ');
  const s = new Scanner(text);
  const offers: ExtensionOffer[] = [];

  for (;;) {
    s.skipOws();
    if (s.done) break;
    if (s.peek() === 0x2c) {
      s.pos++; // an empty list element
      continue;
    }
    const nameAt = s.pos;
    const name = s.token();
    if (name === '') s.fail(`expected an extension name but found ${s.here()}`);
    const offer: ExtensionOffer = { name, params: [] };
    s.skipOws();

    while (s.peek() === 0x3b) {
      s.pos++; // ';'
      s.skipOws();
      const paramName = s.token();
      if (paramName === '') {
        s.fail(`expected a parameter name after ';' in extension "${name}" but found ${s.here()}`);
      }
      s.skipOws();
      let value: string | true = true;
      if (s.peek() === 0x3d) {
        s.pos++; // '='
        s.skipOws();
        if (s.peek() === 0x22) {
          const quotedAt = s.pos;
          value = s.quoted();
          // RFC 6455 §9.1: the value of a quoted-string, after unescaping, must be a token.
          if (!isToken(value)) {
            s.fail(
              `the quoted value of parameter "${paramName}" at position ${quotedAt + 1} is not a token (${JSON.stringify(value)})`,
            );
          }
        } else {
          value = s.token();
          if (value === '') s.fail(`expected a value for parameter "${paramName}" but found ${s.here()}`);
        }
        s.skipOws();
      }
      offer.params.push([paramName, value]);
    }

    if (!s.done && s.peek() !== 0x2c) {
      s.fail(`unexpected ${s.here()} after extension "${text.slice(nameAt, s.pos).trimEnd()}"`);
    }
    offers.push(offer);
  }
  return offers;
}

/**
 * Serialize offers into a header value: `a; p; q=1, b`. Values are tokens by the grammar,
 * so they are written bare; a name or value that is not a token cannot be represented and
 * throws `TypeError`.
 */
export function formatExtensions(offers: readonly ExtensionOffer[]): string {
  return offers.map(formatExtension).join(', ');
}

/** Serialize one offer (see formatExtensions). */
export function formatExtension(offer: ExtensionOffer): string {
  if (!isToken(offer.name)) throw new TypeError(`Invalid extension name ${JSON.stringify(offer.name)}`);
  let out = offer.name;
  for (const [name, value] of offer.params) {
    if (!isToken(name)) {
      throw new TypeError(`Invalid parameter name ${JSON.stringify(name)} in extension "${offer.name}"`);
    }
    if (value === true) {
      out += `; ${name}`;
    } else {
      if (typeof value !== 'string' || !isToken(value)) {
        // RFC 6455 §9.1: even a quoted value must be a token once unescaped, so a
        // non-token value has no valid representation at all.
        throw new TypeError(
          `Invalid value ${JSON.stringify(value)} for parameter "${name}" in extension "${offer.name}": it must be a token`,
        );
      }
      out += `; ${name}=${value}`;
    }
  }
  return out;
}

/**
 * The value of the first parameter called `name` (compared case-insensitively), `true`
 * for a parameter without a value, or `undefined` when absent.
 */
export function getParam(offer: ExtensionOffer, name: string): string | true | undefined {
  const wanted = name.toLowerCase();
  for (const [n, v] of offer.params) {
    if (n.toLowerCase() === wanted) return v;
  }
  return undefined;
}

/** How many times the parameter `name` (case-insensitive) appears in the offer. */
export function countParam(offer: ExtensionOffer, name: string): number {
  const wanted = name.toLowerCase();
  let count = 0;
  for (const [n] of offer.params) if (n.toLowerCase() === wanted) count++;
  return count;
}

/** The first parameter name that appears more than once (case-insensitive), if any. */
export function findDuplicateParam(offer: ExtensionOffer): string | undefined {
  const seen = new Set<string>();
  for (const [n] of offer.params) {
    const key = n.toLowerCase();
    if (seen.has(key)) return n;
    seen.add(key);
  }
  return undefined;
}

/** Is this offer for the named extension (names compared case-insensitively)? */
export function isExtension(offer: ExtensionOffer, name: string): boolean {
  return offer.name.toLowerCase() === name.toLowerCase();
}
