#!/usr/bin/env node
/**
 * A smoke test of bench/run.mjs: a real run with tiny numbers (`--smoke`: one repetition,
 * 30 ms measurements, 1 and 4 connections, a handful of fan-out and idle clients), every
 * group but permessage-deflate, into a temporary directory; then checks that the report has
 * every row, that every implementation echoed messages without errors, and that the SVG
 * chart is well-formed and has a bar per ratio. No timing assertions.
 *
 * Usage: npx tsc -b && node bench/smoke.mjs   (about 20-40 s; exit code 0 when all is well)
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfigs } from './lib/load-scenarios.mjs';
import { buildFrame, FrameScanner, loadPayload } from './lib/raw-load.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const out = mkdtempSync(join(tmpdir(), 'wskit-bench-smoke-'));
const failures = [];
const check = (ok, what) => {
  if (!ok) failures.push(what);
};

/** A minimal well-formedness check: balanced tags, one root <svg>, no stray '<'. */
function checkXml(text) {
  const stack = [];
  let roots = 0;
  const re = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>|<!--[\s\S]*?-->|<\?[\s\S]*?\?>/g;
  let last = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    if (text.slice(last, m.index).includes('<')) return `stray '<' before offset ${m.index}`;
    last = re.lastIndex;
    if (m[2] === undefined) continue;
    const [, closing, name, , selfClosing] = m;
    if (closing) {
      if (stack.pop() !== name) return `</${name}> does not close the open tag`;
    } else if (!selfClosing) {
      if (stack.length === 0) roots++;
      stack.push(name);
    } else if (stack.length === 0) roots++;
  }
  if (text.slice(last).includes('<')) return 'stray < at the end';
  if (stack.length > 0) return `unclosed <${stack.at(-1)}>`;
  if (roots !== 1) return `${roots} root elements`;
  return undefined;
}

/**
 * The frame scanner of the raw load and of the ceiling, on a stream of frames of every
 * header length (and a ping), cut at every offset of a sliding window and at random ones.
 */
function checkScanner() {
  const sizes = [0, 1, 125, 126, 65535, 65536, 70000, 64];
  const ping = Buffer.from([0x89, 0x82, 1, 2, 3, 4, 5, 6]);
  const frames = sizes.map((n, i) => buildFrame(loadPayload(n, i % 2 === 0), i % 2 === 0));
  const stream = Buffer.concat([frames[0], ping, ...frames.slice(1)]);
  const ends = [];
  let at = 0;
  for (const f of [frames[0], ping, ...frames.slice(1)]) {
    at += f.length;
    ends.push(at);
  }
  let seed = 7;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  for (let trial = 0; trial < 200; trial++) {
    const cuts = new Set();
    if (trial < 40) cuts.add(trial + 1);
    while (cuts.size < 1 + (trial % 12)) cuts.add(1 + Math.floor(random() * (stream.length - 1)));
    const points = [0, ...[...cuts].sort((a, b) => a - b), stream.length];
    const scanner = new FrameScanner();
    let messages = 0;
    for (let i = 0; i + 1 < points.length; i++) {
      messages += scanner.scan(stream.subarray(points[i], points[i + 1]));
      const lastEnd = scanner.lastEnd < 0 ? -1 : points[i] + scanner.lastEnd;
      const expectedEnd = ends.filter((e) => e > points[i] && e <= points[i + 1]).at(-1) ?? -1;
      if (lastEnd !== expectedEnd)
        return `cut ${points.join(',')}: frame end ${lastEnd}, expected ${expectedEnd}`;
    }
    if (messages !== sizes.length)
      return `cut ${points.join(',')}: ${messages} messages, expected ${sizes.length}`;
  }
  return undefined;
}

try {
  const scannerError = checkScanner();
  check(scannerError === undefined, `FrameScanner: ${scannerError}`);
  const run = spawnSync(process.execPath, [join(HERE, 'run.mjs'), '--smoke', '--no-deflate', '--out', out], {
    encoding: 'utf8',
    timeout: 300_000,
  });
  if (run.status !== 0) {
    process.stderr.write(run.stderr);
    throw new Error(`bench/run.mjs --smoke exited with ${run.status ?? run.signal}`);
  }
  const report = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8'));
  const md = readFileSync(join(out, 'latest.md'), 'utf8');
  const svg = readFileSync(join(out, 'ratios.svg'), 'utf8');

  const expected = loadConfigs({ quick: true, connectionCounts: [1, 4] }).map((c) => c.scenario);
  for (const [section, impls] of [
    ['serverSide', ['wskit', 'ws', 'ceiling']],
    ['clientSide', ['wskit', 'ws']],
  ]) {
    const rows = report[section]?.rows ?? [];
    check(
      JSON.stringify(rows.map((r) => r.scenario)) === JSON.stringify(expected),
      `${section}: rows ${rows.map((r) => r.scenario).join(' | ')}`,
    );
    for (const row of rows) {
      for (const impl of impls) {
        const r = row.results[impl];
        check(r.messages > 0, `${section} ${row.scenario} ${impl}: no messages echoed`);
        check(r.errors === 0, `${section} ${row.scenario} ${impl}: ${r.errors} errors ${r.errorSamples}`);
        check(r.serverCpuUsPerMessage > 0, `${section} ${row.scenario} ${impl}: no server CPU figure`);
        if (row.pipeline === 1)
          check(Number.isFinite(r.p50Ms) && Number.isFinite(r.p99Ms), `${section} ${row.scenario}: latency`);
      }
      check(Number.isFinite(row.ratios.wskitToWs), `${section} ${row.scenario}: no wskit/ws ratio`);
      check(md.includes(`| ${row.scenario} |`), `latest.md: no row for ${section} ${row.scenario}`);
    }
  }
  check(typeof report.serverSide?.wsMasking?.bufferutil === 'boolean', 'serverSide.wsMasking missing');
  check(/bufferutil (active|NOT active)/.test(md), 'latest.md does not say whether bufferutil was active');
  for (const key of ['echo', 'fanout']) check(report[key]?.length > 0, `${key}: no rows`);
  for (const key of ['setup', 'memory']) check(report[key] !== undefined, `${key}: missing`);
  for (const heading of ['## Server side', '## Client side', '## Client-library mode', '## Fan-out']) {
    check(md.includes(heading), `latest.md: no "${heading}"`);
  }

  const xmlError = checkXml(svg);
  check(xmlError === undefined, `ratios.svg is not well-formed: ${xmlError}`);
  check(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'), 'ratios.svg: no <svg> root');
  const bars = (svg.match(/<rect [^>]*><title>/g) ?? []).length;
  const ratios =
    (report.serverSide?.rows.length ?? 0) * 4 +
    (report.clientSide?.rows.length ?? 0) * 2 +
    (report.echo?.length ?? 0) * 3 +
    (report.fanout?.length ?? 0) * 2 +
    2 +
    // Memory: with 60 idle connections an RSS growth can be 0 pages, and its ratio NaN.
    [report.memory?.ratios.serverHeapWskitToWs, report.memory?.ratios.serverRssWskitToWs].filter(
      Number.isFinite,
    ).length;
  check(bars === ratios, `ratios.svg: ${bars} bars for ${ratios} ratios`);
  for (const scenario of expected)
    check(svg.includes(`>${scenario}</text>`), `ratios.svg: no label ${scenario}`);
} catch (err) {
  failures.push(err instanceof Error ? err.message : String(err));
} finally {
  rmSync(out, { recursive: true, force: true });
}

if (failures.length > 0) {
  process.stderr.write(
    `bench smoke test: ${failures.length} failure(s)\n${failures.map((f) => `  - ${f}`).join('\n')}\n`,
  );
  process.exit(1);
}
process.stderr.write('bench smoke test: every row, no errors, the SVG is well-formed\n');
