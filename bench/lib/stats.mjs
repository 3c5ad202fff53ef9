// Small helpers for the report: medians, ratios, number formatting.

/** The median (the lower middle value for an even count). */
export function median(values) {
  const s = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s[Math.floor((s.length - 1) / 2)];
}

/** a / b, NaN when it means nothing. */
export function ratio(a, b) {
  return Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? a / b : Number.NaN;
}

/** 12,345 — or 1.23 below 10. */
export function formatCount(v) {
  if (!Number.isFinite(v)) return '—';
  if (Math.abs(v) < 10) return v.toFixed(2);
  return Math.round(v).toLocaleString('en-US');
}

export function formatMs(v) {
  if (!Number.isFinite(v)) return '—';
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

/** Bytes as B or KiB (signed: a delta can be negative). */
export function formatBytes(v) {
  if (!Number.isFinite(v)) return '—';
  if (Math.abs(v) < 1024) return `${Math.round(v)} B`;
  return `${(v / 1024).toFixed(1)} KiB`;
}
