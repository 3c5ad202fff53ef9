import { Opcode } from '../protocol/frame.js';
import type { ResolvedConnectionOptions, Stage, WebSocket } from './connection.js';
import { TimerWheel } from './timer-wheel.js';

const AUTO_PONG: Stage = {
  name: 'auto-pong',
  inbound(frame, ws) {
    // pong() itself declines once our Close is sent; a Close still queued behind sends
    // must not stop the answers (readyState already says CLOSING then).
    if (frame.opcode === Opcode.PING) ws.pong(frame.payload);
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
 * (liveness is then connectionTimeout's job). The first Ping goes out between `interval`
 * and `interval` + one slot of the shared timer (see TimerWheel) after the stage is
 * added, the next ones every `interval` ms.
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
  /** Connections whose last Ping is still unanswered. */
  const inFlight = new WeakSet<WebSocket>();
  // One timer for all the connections that use this stage, instead of one each.
  const wheel =
    interval > 0
      ? new TimerWheel<WebSocket>(interval, (ws) => {
          if (ws.readyState === 1 && !inFlight.has(ws)) {
            inFlight.add(ws);
            const answered = () => inFlight.delete(ws);
            ws.ping().then(answered, answered);
          }
          return true; // again one interval later
        })
      : undefined;
  return {
    name: 'auto-ping',
    attach(ws) {
      // Attached once per connection (use() detaches a stage of the same name first).
      wheel?.add(ws);
    },
    detach(ws) {
      wheel?.cancel(ws);
    },
  };
}

/** The stages every connection starts with: auto-pong unless dropIncomingPings, auto-ping when pingInterval > 0. */
export function defaultStages(options: ResolvedConnectionOptions): Stage[] {
  const stages: Stage[] = [];
  if (!options.dropIncomingPings) stages.push(autoPong());
  if (options.pingInterval > 0) stages.push(autoPing(options.pingInterval));
  return stages;
}
