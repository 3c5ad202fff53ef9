export { type ClientOptions, connect } from './client.js';
export type { MessageCompressor } from './compressor.js';
export {
  type CloseInfo,
  type Data,
  type SendOptions,
  type Stage,
  type Transport,
  WebSocket,
} from './connection.js';
export { createPerMessageDeflate, ZlibLimiter, zlibContexts, zlibLimiter } from './deflate.js';
export type { Fanout, FanoutTarget, PublishOptions } from './fanout.js';
export type { PendingUpgrade } from './framework-upgrade.js';
export { createLogger, type Logger, type LogLevel, silentLogger } from './logger.js';
export { Message } from './message.js';
export { type ConnectionOptions, DEFAULTS, type TlsOptions } from './options.js';
export { checkOrigin, guardOrigin, originAllowed, originGuard } from './origin-guard.js';
export type { RateLimitOptions } from './rate-limit.js';
export {
  type AccessHooks,
  type Handler,
  type Reply,
  type RouteOptions,
  type ServerOptions,
  type UpgradeContext,
  WebSocketServer,
} from './server.js';
export { autoPing, autoPong } from './stages.js';
export { checkServerIdentity } from './tls-identity.js';
export type { RawUpgradeRequest } from './upgrade-exchange.js';
export {
  buildUpgradeRequest,
  describeUpgrade,
  type OriginPolicy,
  type UpgradeRequest,
} from './upgrade-request.js';
export { createUpgradeResponse } from './upgrade-response.js';
