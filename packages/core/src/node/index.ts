export { type ClientOptions, connect } from './client.js';
export type { MessageCompressor } from './compressor.js';
export { type CloseInfo, type Data, type SendOptions, WebSocket } from './connection.js';
export { createPerMessageDeflate, ZlibLimiter, zlibContexts, zlibLimiter } from './deflate.js';
export type { Fanout, FanoutTarget, PublishOptions } from './fanout.js';
export type { Http2UpgradeRequest } from './http2-server.js';
export { createLogger, type Logger, type LogLevel, silentLogger } from './logger.js';
export { Message } from './message.js';
export { type ConnectionOptions, DEFAULTS, type TlsOptions } from './options.js';
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
export { autoPing, autoPong, type Stage } from './stages.js';
export { checkServerIdentity } from './tls-identity.js';
export type { Transport } from './transport.js';
export {
  buildUpgradeRequest,
  checkOrigin,
  type OriginPolicy,
  originAllowed,
  originGuard,
  type UpgradeRequest,
} from './upgrade-request.js';
export { createUpgradeResponse } from './upgrade-response.js';
