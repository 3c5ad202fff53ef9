// The SVG chart of the ratios, written by hand from the report (no dependency): one
// horizontal bar per ratio, on a log scale centred on 1.0, bars growing from the 1.0 line
// towards the value, a marker at the issue's target where there is one. A bar that meets
// its target is drawn in full colour, one that misses it is hatched-looking (lighter, red
// outline).

const SERIES = {
  ws: { fill: '#2f6fd0', label: 'wskit / ws (per second)' },
  wsCpu: { fill: '#7fb0f0', label: 'wskit / ws (per CPU-second)' },
  ceiling: { fill: '#5a5a5a', label: 'wskit / raw-TCP ceiling (per second)' },
  ceilingCpu: { fill: '#a8a8a8', label: 'wskit / raw-TCP ceiling (per CPU-second)' },
  lower: { fill: '#c07a1a', label: 'wskit / ws, lower is better (memory)' },
};

const esc = (s) =>
  String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/**
 * sections: [{ title, rows: [{ label, bars: [{ series, value, target?, better? }] }] }]
 * Returns the SVG document as a string.
 */
export function ratioChart({ title, subtitle, sections }) {
  const W = 1000;
  const labelW = 360;
  const plotX0 = labelW + 10;
  const plotX1 = W - 70;
  const barH = 11;
  const rowGap = 7;
  const lo = Math.log2(1 / 8);
  const hi = Math.log2(8);
  const x = (v) => {
    const l = Math.min(hi, Math.max(lo, Math.log2(Math.max(v, 1e-6))));
    return plotX0 + ((l - lo) / (hi - lo)) * (plotX1 - plotX0);
  };
  const out = [];
  let y = 85;
  const body = [];
  for (const section of sections) {
    const rows = section.rows.filter((r) => r.bars.some((b) => Number.isFinite(b.value)));
    if (rows.length === 0) continue;
    y += 14;
    body.push(
      `<text x="10" y="${y}" class="section">${esc(section.title)}</text>`,
      `<line x1="10" x2="${W - 10}" y1="${y + 5}" y2="${y + 5}" class="rule"/>`,
    );
    y += 14;
    for (const row of rows) {
      const bars = row.bars.filter((b) => Number.isFinite(b.value));
      const top = y;
      const h = bars.length * barH;
      body.push(`<text x="${labelW}" y="${top + h / 2 + 4}" class="label">${esc(row.label)}</text>`);
      for (const b of bars) {
        const s = SERIES[b.series] ?? SERIES.ws;
        const x1 = x(1);
        const xv = x(b.value);
        const better = b.better ?? 'higher';
        const met =
          b.target === undefined
            ? undefined
            : better === 'higher'
              ? b.value >= b.target
              : b.value <= b.target;
        const cls = met === false ? ' class="miss"' : '';
        body.push(
          `<rect x="${Math.min(x1, xv).toFixed(1)}" y="${y + 1}" width="${Math.max(1, Math.abs(xv - x1)).toFixed(1)}" height="${barH - 2}" fill="${s.fill}"${cls}><title>${esc(`${row.label}: ${s.label} ${b.value.toFixed(2)}${b.target !== undefined ? ` (target ${better === 'higher' ? '≥' : '≤'} ${b.target})` : ''}`)}</title></rect>`,
          // The value at the bar's outer end (left of a bar below 1 when there is room).
          xv < x1 && xv - 34 > plotX0
            ? `<text x="${(xv - 3).toFixed(1)}" y="${y + barH - 2}" class="value" text-anchor="end">${b.value.toFixed(2)}</text>`
            : `<text x="${(Math.max(x1, xv) + 4).toFixed(1)}" y="${y + barH - 2}" class="value">${b.value.toFixed(2)}</text>`,
        );
        if (b.target !== undefined) {
          const xt = x(b.target).toFixed(1);
          body.push(
            `<path d="M${xt} ${y} v${barH}" class="target"/>`,
            `<path d="M${xt} ${y} l-3 -3 h6 z" class="target-head"/>`,
          );
        }
        y += barH;
      }
      y += rowGap;
    }
  }
  const H = y + 40;
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<title>${esc(title)}</title>`,
    '<style>' +
      '.title{font-size:16px;font-weight:bold}.sub{fill:#555}.section{font-size:13px;font-weight:bold}' +
      '.rule{stroke:#ccc}.label{text-anchor:end}.value{fill:#333;font-size:10px}' +
      '.grid{stroke:#ddd;stroke-dasharray:3 3}.one{stroke:#000;stroke-width:1.5}' +
      '.target{stroke:#d00;stroke-width:2}.target-head{fill:#d00}.miss{fill-opacity:0.35;stroke:#d00;stroke-width:1}' +
      '.axis{fill:#555;text-anchor:middle}' +
      '</style>',
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="10" y="22" class="title">${esc(title)}</text>`,
    `<text x="10" y="40" class="sub">${esc(subtitle)}</text>`,
  );
  // Legend, wrapped to the width.
  let lx = 10;
  let ly = 50;
  for (const key of ['ws', 'wsCpu', 'ceiling', 'ceilingCpu', 'lower']) {
    const s = SERIES[key];
    const w = 14 + s.label.length * 5.6 + 14;
    if (lx + w > W - 10) {
      lx = 10;
      ly += 15;
    }
    out.push(
      `<rect x="${lx}" y="${ly}" width="10" height="10" fill="${s.fill}"/>`,
      `<text x="${lx + 14}" y="${ly + 9}">${esc(s.label)}</text>`,
    );
    lx += w;
  }
  // Grid, the 1.0 line, axis labels (top and bottom).
  for (const v of [0.125, 0.25, 0.5, 1, 2, 4, 8]) {
    const gx = x(v).toFixed(1);
    out.push(`<line x1="${gx}" x2="${gx}" y1="85" y2="${y}" class="${v === 1 ? 'one' : 'grid'}"/>`);
    out.push(`<text x="${gx}" y="${y + 14}" class="axis">${v}×</text>`);
  }
  out.push(...body);
  out.push(
    `<path d="M10 ${y + 26} v10" class="target"/><text x="16" y="${y + 35}">target of issue 13 (red outline, faded: not met)</text>`,
    '</svg>',
  );
  return `${out.join('\n')}\n`;
}
