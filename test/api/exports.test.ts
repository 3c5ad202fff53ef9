import { describe, expect, it } from 'vitest';
import { exportedNames } from './export-names.js';

// The public API of every package, values and types. A change here is a change of the
// public contract: make it on purpose, and say so in CHANGELOG.md.
const METRICS_NAMES = ['collectMetrics', 'observe', 'CollectMetricsOptions', 'MetricsCollector'];
METRICS_NAMES.push('CloseSide', 'Direction', 'Sink');

const PINNED: Record<string, string[]> = {
  'packages/core/src/index.ts': [
    ...['WebSocketServer', 'WebSocket', 'connect', 'Message', 'autoPing', 'autoPong'],
    ...['WebSocketError', 'HandshakeError', 'InvalidStateError', 'CloseCode', 'describeCloseCode'],
    ...['closeCodeToReason', 'reasonToCloseCode'],
    ...['Opcode', 'createLogger', 'guardOrigin', 'originGuard', 'DEFAULTS', 'zlibLimiter'],
    // types
    ...['ServerOptions', 'RouteOptions', 'ClientOptions', 'ConnectionOptions', 'TlsOptions'],
    ...['PerMessageDeflateOptions', 'RateLimitOptions', 'CloseInfo', 'SendOptions', 'Data'],
    ...['Transport', 'Stage', 'Frame', 'Logger', 'LogLevel', 'UpgradeRequest', 'UpgradeContext'],
    ...['Handler', 'AccessHooks', 'Reply', 'OriginPolicy', 'PendingUpgrade', 'RawUpgradeRequest'],
    ...['Fanout', 'FanoutTarget', 'PublishOptions'],
    // observability
    ...['CHANNELS', 'TRACING_CHANNELS', 'ServerStats', 'BackpressureEvent', 'ConnectionCloseEvent'],
    ...['ConnectionOpenEvent', 'HandlerErrorEvent', 'HandshakeAcceptEvent', 'HandshakeRefuseEvent'],
    ...['HandshakeStartEvent', 'HandshakeTraceContext', 'MessageEvent', 'MessageTraceContext'],
    ...['PingRttEvent', 'ProtocolErrorEvent'],
  ],
  'packages/core/src/protocol/index.ts': [
    ...['Protocol', 'END_OF_STREAM', 'ReadyState', 'FrameParser', 'MessageAssembler', 'encodeFrame'],
    ...['Opcode', 'Rsv', 'isControlOpcode', 'CloseCode', 'describeCloseCode', 'isValidWireCloseCode'],
    ...['buildClosePayload', 'parseClosePayload', 'WebSocketError', 'HandshakeError', 'InvalidStateError'],
    ...['parseExtensions', 'formatExtensions', 'generateKey', 'computeAccept', 'validateRequest'],
    ...['selectSubprotocol', 'buildAcceptResponse', 'buildRejectionResponse', 'buildRequestHeaders'],
    ...['validateResponse', 'buildOffers', 'acceptResponse', 'negotiate', 'isValidUtf8', 'Utf8Validator'],
    // types
    ...['ProtocolOptions', 'ProtocolEvent', 'ProtocolSendOptions', 'Inflater', 'Side', 'Frame', 'FrameHooks'],
    ...['DataOpcode', 'FrameHeader', 'FrameParserOptions', 'CloseReason', 'HandshakeResponse'],
    ...['ExtensionOffer', 'ExtensionParam', 'RequestHead', 'ValidatedRequest', 'DeflateParams'],
    'PerMessageDeflateOptions',
  ],
  'packages/express/src/index.ts': [
    ...['expressWs', 'default', 'isWebSocketRequest', 'originGuard', 'WebSocket', 'WebSocketServer'],
    // types
    ...['ExpressWs', 'ExpressWsOptions', 'WebSocketHandler', 'WebSocketMethod', 'WebSocketMiddleware'],
    ...['WebSocketRouteOptions', 'WebSocketRouter', 'WithWebSocketMethod', 'PathParams'],
    ...['OriginGuardOptions', 'OriginPolicy', 'UpgradeRequest', 'CloseInfo', 'Message'],
  ],
  'packages/koa/src/index.ts': [
    ...['koaWs', 'websocket', 'isWebSocketRequest', 'originGuard', 'WebSocket'],
    ...['KoaWs', 'KoaWsOptions', 'KoaWithWs', 'OriginPolicy', 'RouteOptions', 'ServerOptions'],
  ],
  'packages/fastify/src/index.ts': [
    ...['wsPlugin', 'default', 'originGuard', 'WebSocket'],
    ...['WsPluginOptions', 'WsRouteOptions', 'WebSocketHandler', 'InjectWSOptions', 'OriginPolicy'],
  ],
  'packages/redis/src/index.ts': [
    ...['redisFanout', 'createPublisher', 'NotConnectedError', 'PublishError'],
    ...['RedisFanout', 'RedisFanoutOptions', 'RedisClientTemplate', 'FanoutStats'],
    ...['Publisher', 'PublisherOptions', 'PublishReport'],
  ],
  'packages/metrics/src/index.ts': METRICS_NAMES,
  'packages/cli/src/index.ts': [
    ...['main', 'createProgram', 'runServe', 'runConnect', 'runBench'],
    ...['CliIo', 'ProgramResult', 'ServeOptions', 'ServeHandle', 'ConnectOptions', 'BenchOptions'],
    'BenchResult',
  ],
};

describe('public API: the export list of every package is pinned', () => {
  for (const [entry, names] of Object.entries(PINNED)) {
    it(entry, () => {
      expect(exportedNames(entry, Object.keys(PINNED))).toEqual([...names].sort());
    });
  }

  it('no test hook or engine internal leaks out of @wskit/core', () => {
    const names = new Set(exportedNames('packages/core/src/index.ts', Object.keys(PINNED)));
    const internals = ['globCacheSize', 'zlibContexts', 'writeHeader', 'nextMaskKey', 'handlerFailed'];
    for (const internal of [...internals, 'Protocol', 'FrameParser', 'createUpgradeResponse'])
      expect(names.has(internal), internal).toBe(false);
  });
});
