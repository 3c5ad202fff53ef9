/**
 * Minimal glob matching used for route paths ("/chat/*"), remote host/port filters and
 * subprotocol lists.
 *
 * - `*` matches any run of characters, including none and including `/`;
 * - `?` matches exactly one character (one Unicode code point);
 * - every other character matches itself (case-sensitive). There is no escape syntax:
 *   a backslash is a literal backslash.
 */

const CACHE_LIMIT = 1000;
const cache = new Map<string, RegExp>();

// Characters with a meaning in a `u`-mode regular expression. Only these may be escaped
// under the `u` flag (escaping anything else, e.g. `-`, is a syntax error there).
const REGEX_SYNTAX = /[\\^$.*+?()[\]{}|/]/;

function literal(segment: string): string {
  let source = '';
  for (const ch of segment) {
    if (ch === '?') source += '.';
    else if (REGEX_SYNTAX.test(ch)) source += `\\${ch}`;
    else source += ch;
  }
  return source;
}

/**
 * Translate to a regular expression that cannot backtrack catastrophically. A naive
 * translation (`*` -> `.*`) takes polynomial time of high degree on patterns with many
 * stars ("*a*a*a*b" against "aaaa...") and the subjects (URL paths, host names) come from
 * the network. Instead each segment between two stars is matched at its earliest
 * occurrence and then committed to, which is what a greedy wildcard matcher does and is
 * always correct for `*`/`?` globs: `(?=(.*?seg))\N` — a lookahead is atomic in JavaScript,
 * and the back-reference consumes exactly what it found.
 */
function translate(pattern: string): string {
  const segments = pattern.split(/\*+/);
  if (segments.length === 1) return `^${literal(pattern)}$`;
  let source = `^${literal(segments[0]!)}`;
  for (let i = 1; i < segments.length - 1; i++) {
    source += `(?=(.*?${literal(segments[i]!)}))\\${i}`;
  }
  return `${source}.*${literal(segments[segments.length - 1]!)}$`;
}

/**
 * Compile a glob pattern to an anchored RegExp (flags `su`, so `.` also matches line
 * breaks and works on code points). Results are cached (bounded, least recently used
 * evicted first). The returned RegExp is stateless (no `g`/`y` flag) and safe to share.
 */
export function compileGlob(pattern: string): RegExp {
  if (typeof pattern !== 'string') throw new TypeError('A glob pattern must be a string');
  const hit = cache.get(pattern);
  if (hit !== undefined) {
    // Refresh its position so that frequently used patterns stay cached.
    cache.delete(pattern);
    cache.set(pattern, hit);
    return hit;
  }
  const compiled = new RegExp(translate(pattern), 'su');
  if (cache.size >= CACHE_LIMIT) {
    const oldest = cache.keys().next().value;
    if (oldest !== undefined) cache.delete(oldest);
  }
  cache.set(pattern, compiled);
  return compiled;
}

/** Does `value` match the pattern (or any of the patterns, for a list; an empty list matches nothing)? */
export function globMatch(pattern: string | readonly string[], value: string): boolean {
  if (typeof pattern === 'string') return matchOne(pattern, value);
  for (const p of pattern) {
    if (matchOne(p, value)) return true;
  }
  return false;
}

function matchOne(pattern: string, value: string): boolean {
  // Fast paths for the two most common shapes.
  if (pattern === '*') return true;
  if (!pattern.includes('*') && !pattern.includes('?')) return pattern === value;
  return compileGlob(pattern).test(value);
}

/** Number of compiled patterns currently cached (for tests and diagnostics). */
export function globCacheSize(): number {
  return cache.size;
}
