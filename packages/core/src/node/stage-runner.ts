import type { Frame } from '../protocol/frame.js';
import type { FrameHooks, Protocol } from '../protocol/protocol.js';
import type { StageOf } from './connection-types.js';
import { FrameTaps, type FrameTapsHost } from './frame-taps.js';

/** The connection a StageRunner works for: the object stages get, its engine, its reading. */
export interface StageHost<W> extends FrameTapsHost {
  readonly owner: W;
  readonly proto: Protocol;
}

/**
 * A connection's frame stages and frames() readers, plugged into its Protocol: inbound
 * stages run before the state machine sees a frame, outbound ones (in reverse order)
 * before a frame is encoded. `W` is the connection handed to the stages.
 */
export class StageRunner<W> implements FrameHooks {
  private readonly host: StageHost<W>;
  private readonly pauseReason: number;
  /** Replaced, never changed in place (`list` is handed out). */
  private list: readonly StageOf<W>[] = [];
  private taps: FrameTaps | undefined;
  private hasInbound = false;
  private hasOutbound = false;

  constructor(host: StageHost<W>, pauseReason: number) {
    this.host = host;
    this.pauseReason = pauseReason;
  }

  private get ws(): W {
    return this.host.owner;
  }

  private get proto(): Protocol {
    return this.host.proto;
  }

  get stages(): readonly StageOf<W>[] {
    return this.list;
  }

  /**
   * The stages a connection starts with. A frozen list (the server's per-route defaults,
   * names unique) is used as it is, shared by the route's connections; `list` is never
   * changed in place.
   */
  start(stages: readonly StageOf<W>[]): void {
    if (!Object.isFrozen(stages) || this.list.length > 0) {
      for (const stage of stages) this.use(stage, true);
      return;
    }
    this.list = stages;
    this.sync();
    for (const stage of stages) stage.attach?.(this.ws);
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
    this.taps ??= new FrameTaps(this.host, this.pauseReason);
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

  /** Plugs this runner into the protocol while any stage or reader needs to see frames. */
  private sync(): void {
    this.hasInbound = this.list.some((s) => s.inbound !== undefined);
    this.hasOutbound = this.list.some((s) => s.outbound !== undefined);
    this.proto.frameHooks = this.hasInbound || this.hasOutbound || this.taps !== undefined ? this : undefined;
  }

  /** FrameHooks: the inbound stages in order, then the frames() readers. */
  inbound(frame: Frame): Frame | null {
    let current: Frame | null = frame;
    // A stage that swallows a frame hides it from later stages, readers and handlers.
    if (this.hasInbound)
      for (const stage of this.list)
        if (current !== null && stage.inbound) current = stage.inbound(current, this.ws);
    if (current !== null) this.taps?.push(current, this.proto.closeSent !== undefined);
    return current;
  }

  /** FrameHooks: whether any stage rewrites outgoing frames. */
  get outboundActive(): boolean {
    return this.hasOutbound;
  }

  /** FrameHooks: the outbound stages, last added first. */
  outbound(frame: Frame): Frame | null {
    if (!this.hasOutbound) return frame;
    let current: Frame | null = frame;
    const list = this.list;
    for (let i = list.length - 1; i >= 0 && current !== null; i--) {
      const stage = list[i] as StageOf<W>;
      if (stage.outbound) current = stage.outbound(current, this.ws);
    }
    return current;
  }
}
