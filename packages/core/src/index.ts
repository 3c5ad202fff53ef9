// @wskit/core: what applications call. The engine is under @wskit/core/protocol; the
// names below are pinned by test/exports.test.ts.
export { type ClientOptions, connect } from './node/client.js';
export type {
  CloseInfo,
  Data,
  SendOptions,
  Stage,
  Transport,
} from './node/connection.js';
export { WebSocket } from './node/connection.js';
export { zlibLimiter } from './node/deflate.js';
export { CHANNELS, TRACING_CHANNELS } from './node/diagnostics.js';
export type {
  BackpressureEvent,
  ConnectionCloseEvent,
  ConnectionOpenEvent,
  HandlerErrorEvent,
  HandshakeAcceptEvent,
  HandshakeRefuseEvent,
  HandshakeStartEvent,
  HandshakeTraceContext,
  MessageEvent,
  MessageTraceContext,
  PingRttEvent,
  ProtocolErrorEvent,
} from './node/diagnostics-types.js';
export type { Fanout, FanoutTarget, PublishOptions } from './node/fanout.js';
export type { PendingUpgrade } from './node/framework-upgrade.js';
export { createLogger, type Logger, type LogLevel } from './node/logger.js';
export { Message } from './node/message.js';
export { type ConnectionOptions, DEFAULTS, type TlsOptions } from './node/options.js';
export { guardOrigin, originGuard } from './node/origin-guard.js';
export type { RateLimitOptions } from './node/rate-limit.js';
export {
  type AccessHooks,
  type Handler,
  type Reply,
  type RouteOptions,
  type ServerOptions,
  type UpgradeContext,
  WebSocketServer,
} from './node/server.js';
export { autoPing, autoPong } from './node/stages.js';
export type { ServerStats } from './node/stats.js';
export type { RawUpgradeRequest } from './node/upgrade-exchange.js';
export type { OriginPolicy, UpgradeRequest } from './node/upgrade-request.js';
export {
  CloseCode,
  closeCodeToReason,
  describeCloseCode,
  reasonToCloseCode,
} from './protocol/close-codes.js';
export { HandshakeError, InvalidStateError, WebSocketError } from './protocol/errors.js';
export { type Frame, Opcode } from './protocol/frame.js';
export type { PerMessageDeflateOptions } from './protocol/permessage-deflate.js';
