import type { CloseInfo } from './connection-types.js';

/** `ws.closed`: a promise of how the connection closed, created only when asked for. */
export class ClosedSignal {
  private promise: Promise<CloseInfo> | undefined;
  private resolve: ((info: CloseInfo) => void) | undefined;
  private info: CloseInfo | undefined;

  /** `info`: the connection already closed. */
  constructor(info?: CloseInfo) {
    this.info = info;
  }

  get closed(): Promise<CloseInfo> {
    this.promise ??=
      this.info !== undefined
        ? Promise.resolve(this.info)
        : new Promise((resolve) => {
            this.resolve = resolve;
          });
    return this.promise;
  }

  settle(info: CloseInfo): void {
    this.info = info;
    this.resolve?.(info);
    this.resolve = undefined;
  }
}
