/**
 * A small coverage-guided fuzzer (libFuzzer's loop, in-process): inputs are mutated from a
 * corpus, and an input joins the corpus when it reaches code (V8 block coverage of the
 * target's modules, read through node:inspector) that no earlier input reached. Fresh
 * structure-aware inputs come from fast-check arbitraries. A finding is an input for which
 * the target's check throws: its bytes are written to findings/<target>/ and reported.
 *
 * @jazzer.js/core installs from the registry, but its prebuilt addon needs glibc 2.38,
 * which this machine lacks (ERR_DLOPEN_FAILED), hence this engine.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';
import fc from 'fast-check';

export interface FuzzTarget {
  name: string;
  /** Runs one input and throws if an invariant does not hold. */
  run(input: Buffer): void;
  /** Structure-aware generator of fresh inputs. */
  arbitrary: fc.Arbitrary<Buffer>;
  /** Byte strings worth splicing in (tokens of the format). */
  dictionary: readonly Buffer[];
  /** Source paths whose coverage guides the search (substring of the script URL). */
  coverage: readonly string[];
  maxLength: number;
}

export interface Finding {
  input: Buffer;
  error: string;
}

export interface FuzzReport {
  target: string;
  execs: number;
  corpus: number;
  added: number;
  edges: number;
  findings: Finding[];
  slowest: { ms: number; input: Buffer };
  coverageGuided: boolean;
}

export interface FuzzOptions {
  seconds: number;
  corpusDir: string;
  findingsDir: string;
  /** Write inputs that found new coverage to corpusDir (the long run). */
  saveCorpus: boolean;
  seed: number;
  /** An input slower than this is a finding (a hang in the making). */
  slowMs?: number;
}

/** xorshift32: a seeded PRNG so that a run can be repeated. */
function prng(seed: number): () => number {
  let x = seed | 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
}

const INTERESTING = [
  0, 1, 0x7d, 0x7e, 0x7f, 0x80, 0x81, 0x88, 0x89, 0x8a, 0xff, 0x0a, 0x0d, 0x20, 0x2c, 0x3b, 0x3d, 0x22,
];

/**
 * The inspector session with V8's precise block coverage, started once per process and
 * never stopped: V8 loses block counters of functions compiled while coverage was off,
 * so a second start in the same process would see far fewer blocks.
 */
let profiler: { post<T>(method: string, params?: object): T } | null | undefined;

function startProfiler(): typeof profiler {
  if (profiler !== undefined) return profiler;
  try {
    const session = new Session();
    session.connect();
    const post = <T>(method: string, params?: object): T => {
      let result: T | undefined;
      let error: Error | null = null;
      // A session on the same thread answers synchronously.
      session.post(method, params, (err, res) => {
        error = err;
        result = res as T;
      });
      if (error) throw error;
      if (result === undefined) throw new Error(`inspector: no synchronous answer to ${method}`);
      return result;
    };
    post('Profiler.enable');
    post('Profiler.startPreciseCoverage', { callCount: true, detailed: true });
    profiler = { post };
  } catch {
    profiler = null;
  }
  return profiler;
}

// Coverage is on before the targets' modules run for the first time.
startProfiler();

/** Reads V8 block coverage of the target's scripts; each covered block is an "edge". */
class Coverage {
  private readonly seen = new Set<string>();
  private readonly profiler = startProfiler();
  readonly enabled = this.profiler !== null;

  constructor(private readonly paths: readonly string[]) {}

  /** The blocks of the target's scripts run since the last call (resets the counters). */
  take(): string[] {
    if (!this.profiler) return [];
    const { result } = this.profiler.post<{
      result: Array<{
        url: string;
        functions: Array<{ ranges: Array<{ startOffset: number; endOffset: number; count: number }> }>;
      }>;
    }>('Profiler.takePreciseCoverage');
    const keys: string[] = [];
    for (const script of result) {
      if (!this.paths.some((p) => script.url.includes(p))) continue;
      for (const fn of script.functions) {
        for (const r of fn.ranges)
          if (r.count > 0) keys.push(`${script.url}:${r.startOffset}:${r.endOffset}`);
      }
    }
    return keys;
  }

  hasNew(keys: readonly string[]): boolean {
    return keys.some((k) => !this.seen.has(k));
  }

  merge(keys: readonly string[]): void {
    for (const k of keys) this.seen.add(k);
  }

  get edges(): number {
    return this.seen.size;
  }
}

function hash(input: Buffer): string {
  return createHash('sha1').update(input).digest('hex').slice(0, 16);
}

export function loadCorpus(dir: string): Buffer[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => !f.startsWith('.'))
    .sort()
    .map((f) => readFileSync(join(dir, f)));
}

function mutate(input: Buffer, corpus: readonly Buffer[], target: FuzzTarget, rnd: () => number): Buffer {
  const pick = (n: number) => Math.floor(rnd() * n);
  let out = Buffer.from(input);
  const rounds = 1 + pick(4);
  for (let i = 0; i < rounds; i++) {
    const at = out.length === 0 ? 0 : pick(out.length);
    switch (pick(10)) {
      case 0: // flip a bit
        if (out.length > 0) out[at]! ^= 1 << pick(8);
        break;
      case 1: // an interesting byte
        if (out.length > 0) out[at] = INTERESTING[pick(INTERESTING.length)]!;
        break;
      case 2: // a random byte
        if (out.length > 0) out[at] = pick(256);
        break;
      case 3: {
        // delete a range
        const len = 1 + pick(Math.min(16, Math.max(1, out.length - at)));
        out = Buffer.concat([out.subarray(0, at), out.subarray(at + len)]);
        break;
      }
      case 4: {
        // duplicate a range
        const len = 1 + pick(Math.min(64, Math.max(1, out.length - at)));
        const piece = out.subarray(at, at + len);
        out = Buffer.concat([out.subarray(0, at), piece, piece, out.subarray(at)]);
        break;
      }
      case 5:
      case 6: {
        // insert a dictionary token
        const token = target.dictionary[pick(target.dictionary.length)] ?? Buffer.alloc(0);
        out = Buffer.concat([out.subarray(0, at), token, out.subarray(at)]);
        break;
      }
      case 7: {
        // splice with another corpus entry
        const other = corpus[pick(corpus.length)];
        if (other !== undefined && other.length > 0) {
          const from = pick(other.length);
          out = Buffer.concat([out.subarray(0, at), other.subarray(from)]);
        }
        break;
      }
      case 8: // truncate
        out = out.subarray(0, at);
        break;
      default: {
        // a 16-bit or 64-bit length-like value
        if (out.length >= at + 2) out.writeUInt16BE(pick(2) === 0 ? pick(0x10000) : 0xffff - pick(4), at);
        break;
      }
    }
  }
  return out.length > target.maxLength ? out.subarray(0, target.maxLength) : out;
}

/** Runs `target` for `seconds`: the corpus first, then mutations and fresh inputs. */
export function fuzz(target: FuzzTarget, options: FuzzOptions): FuzzReport {
  const rnd = prng(options.seed);
  const slowMs = options.slowMs ?? 1000;
  const corpus = loadCorpus(options.corpusDir);
  const known = new Set(corpus.map(hash));
  const findings: Finding[] = [];
  const findingKeys = new Set<string>();
  const coverage = new Coverage(target.coverage);
  let execs = 0;
  let added = 0;
  let slowest = { ms: 0, input: Buffer.alloc(0) };

  const record = (input: Buffer, err: unknown) => {
    const error = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    // One finding per distinct message, so one bug does not flood the report.
    const key = error.replace(/\d+/g, 'N').slice(0, 200);
    if (findingKeys.has(key)) return;
    findingKeys.add(key);
    findings.push({ input: Buffer.from(input), error });
    mkdirSync(options.findingsDir, { recursive: true });
    writeFileSync(join(options.findingsDir, `${hash(input)}.bin`), input);
  };
  const exec = (input: Buffer): void => {
    execs++;
    const started = performance.now();
    try {
      target.run(input);
    } catch (err) {
      record(input, err);
    }
    const ms = performance.now() - started;
    if (ms > slowest.ms) slowest = { ms, input };
    if (ms > slowMs) {
      // A GC pause or a busy machine can stall one run: slow twice in a row is a finding.
      const again = performance.now();
      try {
        target.run(input);
      } catch {
        // reported above already
      }
      const ms2 = performance.now() - again;
      if (ms2 > slowMs)
        record(
          input,
          new Error(`slow input: ${ms.toFixed(0)} and ${ms2.toFixed(0)} ms (limit ${slowMs} ms)`),
        );
    }
  };
  const keep = (input: Buffer) => {
    const h = hash(input);
    if (known.has(h)) return;
    known.add(h);
    corpus.push(input);
    added++;
    if (options.saveCorpus) {
      mkdirSync(options.corpusDir, { recursive: true });
      writeFileSync(join(options.corpusDir, h), input);
    }
  };

  // 1. Replay the corpus: every kept input is a regression check.
  coverage.take();
  for (const input of [...corpus]) exec(input);
  coverage.merge(coverage.take());

  // 2. Mutate and generate until the time is up, in batches; a batch that reached new
  // blocks is replayed input by input to find which inputs did.
  const deadline = performance.now() + options.seconds * 1000;
  const batch = 256;
  let round = 0;
  while (performance.now() < deadline) {
    round++;
    const fresh =
      corpus.length === 0 || rnd() < 0.1
        ? fc.sample(target.arbitrary, { seed: (options.seed + round) | 0, numRuns: batch })
        : Array.from({ length: batch }, () =>
            mutate(corpus[Math.floor(rnd() * corpus.length)]!, corpus, target, rnd),
          );
    for (const input of fresh) exec(input);
    if (!coverage.enabled) {
      // Without coverage, keep a sample so that mutations still build on structure.
      if (corpus.length < 256) keep(fresh[0]!);
      continue;
    }
    const batchKeys = coverage.take();
    if (!coverage.hasNew(batchKeys)) continue;
    // Bisect: replay halves, and go on only into halves that reach new blocks.
    const pending: Buffer[][] = [fresh];
    while (pending.length > 0) {
      const group = pending.pop()!;
      for (const input of group) exec(input);
      const keys = coverage.take();
      if (!coverage.hasNew(keys)) continue;
      if (group.length === 1) {
        coverage.merge(keys);
        keep(group[0]!);
        continue;
      }
      const half = group.length >> 1;
      pending.push(group.slice(half), group.slice(0, half));
    }
    coverage.merge(batchKeys);
  }
  const edges = coverage.edges;
  return {
    target: target.name,
    execs,
    corpus: corpus.length,
    added,
    edges,
    findings,
    slowest,
    coverageGuided: coverage.enabled,
  };
}
