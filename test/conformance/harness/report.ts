/** Writes report.json, report.html (self-contained) and summary.md from the results. */
import { writeFileSync } from 'node:fs';
import type { CaseResult, Direction, ObservedFrame, Outcome } from './types.js';

export interface FamilyInfo {
  family: number;
  name: string;
}

export interface SummaryRow {
  family: number;
  name: string;
  direction: Direction | 'both';
  cases: number;
  ok: number;
  nonStrict: number;
  informational: number;
  unimplemented: number;
  failed: number;
  durationMs: number;
}

const DIRECTIONS: Direction[] = ['server', 'client'];
const JSON_FRAMES = 40;
const HTML_FRAMES = 12;

export function summarize(results: CaseResult[], families: FamilyInfo[]): SummaryRow[] {
  const rows: SummaryRow[] = [];
  const count = (rs: CaseResult[], o: Outcome) => rs.filter((r) => r.outcome === o).length;
  const row = (
    family: number,
    name: string,
    direction: SummaryRow['direction'],
    rs: CaseResult[],
  ): SummaryRow => ({
    family,
    name,
    direction,
    cases: rs.length,
    ok: count(rs, 'OK'),
    nonStrict: count(rs, 'NON-STRICT'),
    informational: count(rs, 'INFORMATIONAL'),
    unimplemented: count(rs, 'UNIMPLEMENTED'),
    failed: count(rs, 'FAILED'),
    durationMs: Math.round(rs.reduce((s, r) => s + r.durationMs, 0)),
  });
  for (const f of families) {
    for (const d of DIRECTIONS) {
      const rs = results.filter((r) => r.family === f.family && r.direction === d);
      if (rs.length > 0) rows.push(row(f.family, f.name, d, rs));
    }
  }
  for (const d of DIRECTIONS)
    rows.push(
      row(
        0,
        'Total',
        d,
        results.filter((r) => r.direction === d),
      ),
    );
  rows.push(row(0, 'Total', 'both', results));
  return rows;
}

const OPCODES: Record<number, string> = {
  0: 'CONT',
  1: 'TEXT',
  2: 'BINARY',
  8: 'CLOSE',
  9: 'PING',
  10: 'PONG',
};

export function describeFrame(f: ObservedFrame): string {
  const name = OPCODES[f.opcode] ?? `OP${f.opcode}`;
  const flags = `${f.fin ? '' : ' FIN=0'}${f.rsv ? ` RSV=${f.rsv}` : ''}`;
  const head = f.head.length > 0 ? ` ${f.head.slice(0, 16)}${f.length > 8 ? '…' : ''}` : '';
  return `${name}${flags} ${f.length}B${head}`;
}

export function writeJson(
  path: string,
  results: CaseResult[],
  summary: SummaryRow[],
  meta: Record<string, unknown>,
): void {
  const trimmed = results.map((r) => ({ ...r, frames: r.frames.slice(0, JSON_FRAMES) }));
  writeFileSync(path, `${JSON.stringify({ ...meta, summary, results: trimmed }, null, 1)}\n`);
}

export function writeMarkdown(
  path: string,
  summary: SummaryRow[],
  meta: { generated: string; node: string; wallMs: number },
): void {
  const lines = [
    '# wskit conformance summary',
    '',
    `Generated ${meta.generated} with Node ${meta.node}; wall time ${(meta.wallMs / 1000).toFixed(1)} s.`,
    'Cases modelled on the Autobahn TestSuite families; see README.md for how outcomes are classified.',
    '',
    '| Family | Name | Direction | Cases | OK | Non-strict | Informational | Unimplemented | Failed |',
    '|---:|---|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of summary) {
    const fam = r.family === 0 ? '' : String(r.family);
    const name = r.family === 0 ? `**${r.name}**` : r.name;
    lines.push(
      `| ${fam} | ${name} | ${r.direction} | ${r.cases} | ${r.ok} | ${r.nonStrict} | ${r.informational} | ${r.unimplemented} | ${r.failed} |`,
    );
  }
  writeFileSync(path, `${lines.join('\n')}\n`);
}

const esc = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const CSS = `
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}
h1{font-size:22px}h2{font-size:18px;margin-top:32px}
table{border-collapse:collapse;margin:8px 0}
th,td{border:1px solid #ccc;padding:3px 6px;vertical-align:top;text-align:left}
th{background:#f0f0f0}
td.n{text-align:right}
.OK{background:#c8f0c8}.NON-STRICT{background:#f6f0a0}.INFORMATIONAL{background:#cfe0ff}
.UNIMPLEMENTED{background:#e0e0e0}.FAILED{background:#f5b5b5}
code,.mono{font-family:ui-monospace,monospace;font-size:12px}
.small{font-size:12px;color:#555}
`;

export function writeHtml(
  path: string,
  results: CaseResult[],
  summary: SummaryRow[],
  families: FamilyInfo[],
  meta: { generated: string; node: string; wallMs: number },
): void {
  const out: string[] = [];
  out.push(
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>wskit conformance report</title><style>${CSS}</style></head><body>`,
  );
  out.push('<h1>wskit conformance report</h1>');
  out.push(
    `<p class="small">Generated ${esc(meta.generated)} with Node ${esc(meta.node)}; wall time ${(meta.wallMs / 1000).toFixed(1)} s. ` +
      'Direction "server": our WebSocketServer against a fuzzing client; "client": our connect() against a fuzzing server.</p>',
  );
  out.push(
    '<table><tr><th>Family</th><th>Name</th><th>Direction</th><th>Cases</th><th>OK</th><th>Non-strict</th><th>Informational</th><th>Unimplemented</th><th>Failed</th><th>Time (ms)</th></tr>',
  );
  for (const r of summary) {
    const bad = r.failed > 0 ? 'FAILED' : r.nonStrict > 0 ? 'NON-STRICT' : 'OK';
    const link = r.family === 0 ? esc(r.name) : `<a href="#f${r.family}">${esc(r.name)}</a>`;
    out.push(
      `<tr><td class="n">${r.family || ''}</td><td>${link}</td><td>${r.direction}</td><td class="n">${r.cases}</td>` +
        `<td class="n">${r.ok}</td><td class="n">${r.nonStrict}</td><td class="n">${r.informational}</td>` +
        `<td class="n">${r.unimplemented}</td><td class="n ${bad}">${r.failed}</td><td class="n">${r.durationMs}</td></tr>`,
    );
  }
  out.push('</table>');
  for (const f of families) {
    const rs = results.filter((r) => r.family === f.family);
    if (rs.length === 0) continue;
    out.push(`<h2 id="f${f.family}">${f.family} — ${esc(f.name)}</h2>`);
    out.push(
      '<table><tr><th>Case</th><th>Dir.</th><th>Description</th><th>Expectation</th><th>Observed frames from our side</th><th>Close</th><th>Outcome</th><th>ms</th></tr>',
    );
    for (const r of rs) {
      const frames = r.frames.slice(0, HTML_FRAMES).map(describeFrame);
      if (r.framesTotal > HTML_FRAMES) frames.push(`… ${r.framesTotal} frames in all`);
      const close = r.close ? `code ${r.close.code ?? 'none'}` : 'no Close';
      const closeInfo = `${close}<br><span class="small">handshake ${r.closingHandshake ? 'complete' : 'incomplete'}; TCP closed first by ${r.tcpClosedFirst}${r.tcpOrderOk ? '' : ' (order not as RFC 6455 §7.1.1)'}</span>`;
      const notes =
        r.notes.length > 0 ? `<br><span class="small">${r.notes.map(esc).join('<br>')}</span>` : '';
      const negotiated = r.negotiated ? `<br><span class="small mono">${esc(r.negotiated)}</span>` : '';
      out.push(
        `<tr><td class="mono">${esc(r.id)}</td><td>${r.direction}</td><td>${esc(r.description)}${negotiated}</td>` +
          `<td>${esc(r.expectation)}</td><td class="mono">${frames.map(esc).join('<br>')}</td><td>${closeInfo}</td>` +
          `<td class="${r.outcome}">${r.outcome}${notes}</td><td class="n">${r.durationMs}</td></tr>`,
      );
    }
    out.push('</table>');
  }
  out.push('</body></html>');
  writeFileSync(path, `${out.join('\n')}\n`);
}
