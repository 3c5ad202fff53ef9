export {
  type CloseInfo,
  type Message,
  type OriginPolicy,
  type UpgradeRequest,
  WebSocket,
  WebSocketServer,
} from '@wskit/core';
export {
  type ExpressWs,
  type ExpressWsOptions,
  expressWs,
  expressWs as default,
  isWebSocketRequest,
  type PathParams,
  type WebSocketHandler,
  type WebSocketMethod,
  type WebSocketMiddleware,
  type WebSocketRouteOptions,
  type WebSocketRouter,
  type WithWebSocketMethod,
} from './express-ws.js';
export { type OriginGuardOptions, originGuard } from './origin-guard.js';
