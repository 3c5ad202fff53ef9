import type { Frame } from '../protocol/frame.js';
import type { Protocol } from '../protocol/protocol.js';
import type { StageOf } from './connection-types.js';
import { FrameTaps, type FrameTapsHost } from './frame-taps.js';

/**
 * A connection's frame stages and frames() readers, plugged into its Protocol: inbound
 * stages run before the state machine sees a frame, outbound ones (in reverse order)
 * before a frame is encoded. `W` is the connection handed to the stages.
 */
export class StageRunner<W> {
  private readonly ws: W;
  private readonly proto: Protocol;
  private readonly tapsHost: FrameTapsHost;
  private readonly pauseReason: number;
  /** Replaced, never changed in place (`list` is handed out). */
  private list: readonly StageOf<W>[] = [];
  private taps: FrameTaps | undefined;

  constructor(ws: W, proto: Protocol, tapsHost: FrameTapsHost, pauseReason: number) {
    this.ws = ws;
    this.proto = proto;
    this.tapsHost = tapsHost;
    this.pauseReason = pauseReason;
  }

  get stages(): readonly StageOf<W>[] {
    return this.list;
  }

  /** Adds a stage after the existing ones, replacing one of the same name. */
  use(stage: StageOf<W>, open: boolean): void {
    if (this.list.some((s) => s.name === stage.name)) this.unuse(stage.name);
    this.list = this.list.concat([stage]); // concat: no spare capacity
    this.sync();
    if (open) stage.attach?.(this.ws);
  }

  unuse(name: string): boolean {
    const stage = this.list.find((s) => s.name === name);
    if (stage === undefined) return false;
    this.list = this.list.filter((s) => s !== stage);
    this.sync();
    stage.detach?.(this.ws);
    return true;
  }

  /** A new frames() reader. */
  reader(): AsyncIterable<Frame> {
    this.taps ??= new FrameTaps(this.tapsHost, this.pauseReason);
    this.sync();
    return this.taps.reader();
  }

  /** Our Close is out: readers must not hold reading back any more. */
  releaseReaders(): void {
    this.taps?.release();
  }

  /** The connection closed: stages are detached, readers end. */
  close(): void {
    for (const stage of this.list) stage.detach?.(this.ws);
    this.taps?.wakeAll();
  }

  private sync(): void {
    const inbound = this.list.filter((s) => s.inbound !== undefined);
    const outbound = this.list.filter((s) => s.outbound !== undefined).reverse();
    const taps = this.taps;
    this.proto.onInboundFrame =
      inbound.length === 0 && taps === undefined
        ? undefined
        : (frame) => {
            let current: Frame | null = frame;
            // A stage that swallows a frame hides it from later stages, readers and handlers.
            for (const stage of inbound)
              if (current !== null) current = stage.inbound?.(current, this.ws) ?? null;
            if (current !== null) taps?.push(current, this.proto.closeSent !== undefined);
            return current;
          };
    this.proto.onOutboundFrame =
      outbound.length === 0
        ? undefined
        : (frame) => {
            let current: Frame | null = frame;
            for (const stage of outbound)
              if (current !== null) current = stage.outbound?.(current, this.ws) ?? null;
            return current;
          };
  }
}
