import type { Data } from './message.js';

/**
 * The seam between `WebSocketServer.publish()` and a transport that carries publishes to
 * other processes (@wskit/redis is one). Core does no I/O for it: it only tells the
 * fan-out which topics have local subscribers and what was published, and lets it
 * deliver messages from elsewhere to the local subscribers.
 */

export interface PublishOptions {
  /** Send as a binary message. Default: true unless `data` is a string. */
  binary?: boolean;
  /**
   * true: compress the message for the subscribers that negotiated permessage-deflate
   * (each connection then encodes its own frame). Default false: one uncompressed frame
   * for every subscriber.
   */
  compress?: boolean;
}

/** What a fan-out may call on the server it is attached to. */
export interface FanoutTarget {
  /** The server's publish(): local subscribers, then the fan-out's published(). */
  publish(topic: string, data: Data, opts?: PublishOptions): number;
  /**
   * Delivers a message to this process's subscribers of `topic` only (a message that
   * came from another process); never calls the fan-out back. Returns the recipients.
   */
  deliverLocal(topic: string, data: Data, opts?: PublishOptions): number;
  /** The topics that have at least one local subscriber now. */
  localTopics(): IterableIterator<string>;
}

/**
 * Carries `publish()` across processes. Every callback is called synchronously by the
 * server and must not throw (report failures on your own channel).
 */
export interface Fanout {
  /** Called once, when the fan-out is given to a server (option `fanout` or setFanout). */
  attach(server: FanoutTarget): void;
  /** `topic` got its first local subscriber. */
  topicOpened(topic: string): void;
  /** `topic` lost its last local subscriber. */
  topicClosed(topic: string): void;
  /**
   * `publish()` was called in this process: carry it to the others. `local` is the number
   * of local connections it already went to; `payload` must not be modified.
   */
  published(topic: string, payload: Buffer, opts: Required<PublishOptions>, local: number): void;
  /** The server is closing (close()): release the transport. */
  close?(): void | Promise<void>;
}
