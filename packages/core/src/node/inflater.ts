import { WebSocketError } from '../protocol/errors.js';
import type { Inflater, Protocol } from '../protocol/protocol.js';
import type { MessageCompressor } from './compressor.js';

/** What inflation needs from its connection. */
export interface InflateHost {
  /** Stop reading the socket: bytes arriving meanwhile would pile up in the parser. `compressed`: input bytes. */
  pauseForInflate(compressed: number): void;
  /** Inflation is over (done or failed): read and process again. */
  inflateDone(): void;
  readonly ended: boolean;
  /** An unexpected error in the glue itself. */
  internalError(err: unknown): void;
}

const EMPTY = Buffer.alloc(0);

/**
 * The protocol's Inflater on a connection's zlib contexts (permessage-deflate, RFC 7692
 * §7.2.2): the frames the protocol hands over are inflated in one zlib call, their output
 * goes back to the protocol piece by piece (so an invalid UTF-8 sequence or an oversized
 * message fails while inflating, not after).
 */
export function createInflater(proto: Protocol, compressor: MessageCompressor, host: InflateHost): Inflater {
  return {
    inflate(payloads, fin, limit) {
      const data = payloads.length === 1 ? (payloads[0] as Buffer) : payloads;
      host.pauseForInflate(payloads.reduce((n, p) => n + p.length, 0));
      compressor
        .decompress(data, fin, limit, (chunk) => {
          proto.receiveInflated(chunk, false);
          if (!proto.inflateInProgress) host.inflateDone(); // failed: report it now
        })
        .then(
          () => proto.receiveInflated(EMPTY, true),
          (err: unknown) => {
            if (err instanceof WebSocketError) proto.inflateFailed(err);
            else proto.inflateFailed(err instanceof Error ? err.message : String(err));
          },
        )
        .then(() => {
          if (!host.ended) host.inflateDone();
        })
        .catch((err: unknown) => host.internalError(err));
    },
  };
}
