import type { Frame } from '../protocol/frame.js';
import { Opcode } from '../protocol/frame.js';
import type { WebSocket } from './connection.js';

/**
 * A frame interceptor. `inbound` sees each frame received before the connection acts
 * on it, `outbound` each frame before it is encoded; both return the frame (possibly a
 * changed one), or null to swallow it. Stages run in the order they were added
 * (outbound ones in reverse), and must not block.
 */
export interface Stage {
  readonly name: string;
  inbound?(frame: Frame, ws: WebSocket): Frame | null;
  outbound?(frame: Frame, ws: WebSocket): Frame | null;
  /** Called when the stage is added to an open connection. */
  attach?(ws: WebSocket): void;
  /** Called when the stage is removed or the connection closes. */
  detach?(ws: WebSocket): void;
}

const AUTO_PONG: Stage = {
  name: 'auto-pong',
  inbound(frame, ws) {
    if (frame.opcode === Opcode.PING && ws.readyState === 1) ws.pong(frame.payload);
    return frame;
  },
};

/** Answers each Ping with a Pong carrying the same payload (RFC 6455 §5.5.2). Stateless: shared. */
export function autoPong(): Stage {
  return AUTO_PONG;
}

/**
 * Sends a Ping every `interval` ms; each Pong updates ws.rtt. No new Ping goes out while
 * the previous one is unanswered, so a peer that never answers can't grow the pending set
 * (liveness is then connectionTimeout's job).
 */
export function autoPing(interval: number): Stage {
  // One stage object per interval, shared by connections: its state is per connection.
  let stage = autoPingStages.get(interval);
  if (stage === undefined) {
    stage = createAutoPing(interval);
    autoPingStages.set(interval, stage);
  }
  return stage;
}

const autoPingStages = new Map<number, Stage>();

function createAutoPing(interval: number): Stage {
  const timers = new WeakMap<WebSocket, NodeJS.Timeout>();
  return {
    name: 'auto-ping',
    attach(ws) {
      if (interval <= 0) return;
      let inFlight = false;
      const timer = setInterval(() => {
        if (ws.readyState !== 1 || inFlight) return;
        inFlight = true;
        ws.ping().then(
          () => {
            inFlight = false;
          },
          () => {
            inFlight = false;
          },
        );
      }, interval);
      timers.set(ws, timer);
    },
    detach(ws) {
      clearInterval(timers.get(ws));
      timers.delete(ws);
    },
  };
}
