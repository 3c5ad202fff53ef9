export {
  type CloseInfo,
  type Message,
  type OriginPolicy,
  type UpgradeRequest,
  WebSocket,
  WebSocketServer,
} from '@wskit/core';
export { expressWs, expressWs as default, isWebSocketRequest } from './express-ws.js';
export { type OriginGuardOptions, originGuard } from './origin-guard.js';
export type {
  ExpressWs,
  ExpressWsOptions,
  PathParams,
  WebSocketHandler,
  WebSocketMethod,
  WebSocketMiddleware,
  WebSocketRouteOptions,
  WebSocketRouter,
  WithWebSocketMethod,
} from './types.js';
