import type { ProtocolOptions, Side } from '../protocol/protocol.js';
import type { ConnectionSettings } from './connection-types.js';

/** The engine's options, one object per connection options, side and compression (the engine keeps it). */
const protocolOptionsCache = new WeakMap<object, Map<string, ProtocolOptions>>();

export function protocolOptions<W>(
  opts: ConnectionSettings<W>,
  side: Side,
  compression: boolean,
): ProtocolOptions {
  // A client's options are its own (connect() resolves them per call): nothing to share.
  if (side === 'client') return engineOptions(opts, side, compression);
  let bySide = protocolOptionsCache.get(opts);
  if (bySide === undefined) {
    bySide = new Map();
    protocolOptionsCache.set(opts, bySide);
  }
  const key = compression ? 'deflate' : 'plain';
  let options = bySide.get(key);
  if (options === undefined) {
    options = engineOptions(opts, side, compression);
    bySide.set(key, options);
  }
  return options;
}

function engineOptions<W>(opts: ConnectionSettings<W>, side: Side, compression: boolean): ProtocolOptions {
  return Object.freeze({
    side,
    maxFrameSize: opts.maxFrameSize,
    maxMessageSize: opts.maxMessageSize,
    maxFragments: opts.maxFragments,
    compression,
    // Replies to the messages received before a violation, or right before the peer's
    // Close, go out before our Close.
    holdCloseOnFailure: true,
    holdCloseReply: true,
  });
}
