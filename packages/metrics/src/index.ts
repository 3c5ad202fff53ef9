export type { CloseSide, Direction, Sink } from './observe.js';
export { observe } from './observe.js';
export { type CollectMetricsOptions, collectMetrics, type MetricsCollector } from './prometheus.js';
