/**
 * The Redis side of a fan-out: two connections of our own, duplicated from the
 * application's node-redis client (standalone or Cluster), one to publish and one to
 * subscribe. Standalone Redis uses classic pub/sub (PUBLISH/SUBSCRIBE); a Cluster uses
 * sharded pub/sub (SPUBLISH/SSUBSCRIBE, Redis 7), so each channel lives on the master
 * that owns its hash slot and fan-out traffic is spread over the masters.
 */
import { createClient } from 'redis';

/**
 * A node-redis v5 client (`createClient()`) or cluster (`createCluster()`), connected or
 * not. It is only used as a template: the fan-out opens connections of its own with
 * `duplicate()` and closes them; the application's client is left alone.
 */
export interface RedisClientTemplate {
  duplicate(...args: never[]): unknown;
}

export type MessageListener = (message: Buffer, channel: Buffer) => void;

/** What we call on the duplicates (a subset of node-redis' client and cluster types). */
interface Conn {
  readonly isOpen: boolean;
  readonly isReady?: boolean;
  connect(): Promise<unknown>;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  destroy(): void;
  close(): Promise<void>;
  withCommandOptions(options: { timeout: number }): Conn;
  publish(channel: string, message: Buffer): Promise<number>;
  sPublish(channel: string, message: Buffer): Promise<number>;
  subscribe(channel: string, listener: MessageListener, bufferMode: true): Promise<void>;
  unsubscribe(channel: string, listener: MessageListener, bufferMode: true): Promise<void>;
  sSubscribe(channel: string, listener: MessageListener, bufferMode: true): Promise<void>;
  sUnsubscribe(channel: string, listener: MessageListener, bufferMode: true): Promise<void>;
  sendCommand(...args: unknown[]): Promise<unknown>;
}

export interface LinkOptions {
  client?: RedisClientTemplate | undefined;
  url?: string | undefined;
  /** A command that has not been answered after this long fails (ms). */
  publishTimeout: number;
  /** Connection-level errors (refused, reset...): reported, the client reconnects. */
  onError: (err: Error) => void;
  /** The publishing connection is up (true) or down (false). */
  onState: (up: boolean) => void;
}

export class NotConnectedError extends Error {
  constructor() {
    super('Redis is not reachable: the message was not published to other processes');
    this.name = 'NotConnectedError';
  }
}

export class Link {
  readonly cluster: boolean;
  private readonly template: Conn;
  private pub: Conn | undefined;
  private pubRaw: Conn | undefined;
  private sub: Conn | undefined;
  /** The subscriber's first connection: a Cluster knows its slots only after it. */
  private subConnected: Promise<unknown> = Promise.resolve();
  private readonly options: LinkOptions;
  private closed = false;
  private upState = false;
  private readonly connecting: Promise<void>[] = [];

  constructor(options: LinkOptions) {
    this.options = options;
    if (options.client !== undefined) this.template = options.client as unknown as Conn;
    else if (options.url !== undefined) this.template = createClient({ url: options.url }) as unknown as Conn;
    else throw new TypeError('@wskit/redis: give a node-redis `client` (or cluster), or a `url`');
    if (typeof (this.template as unknown as { duplicate?: unknown }).duplicate !== 'function')
      throw new TypeError('@wskit/redis: `client` must be a node-redis v5 client or cluster');
    // node-redis' cluster has `masters`; a standalone client has `isReady`.
    this.cluster = 'masters' in this.template;
  }

  /** Opens the publishing connection (lazily: a publish-only user never subscribes). */
  private publisher(): Conn {
    if (this.pub !== undefined) return this.pub;
    // Publishes must fail while Redis is away, not wait in node-redis' offline queue
    // (they would be delivered late, after the application was told nothing).
    const conn = this.duplicate({ disableOfflineQueue: true });
    this.pubRaw = conn;
    conn.on('ready', () => this.setUp(true));
    conn.on('end', () => this.setUp(false));
    conn.on('reconnecting', () => this.setUp(false));
    this.pub = conn.withCommandOptions({ timeout: this.options.publishTimeout });
    this.open(conn);
    return this.pub;
  }

  private subscriber(): Conn {
    if (this.sub !== undefined) return this.sub;
    // The default offline queue: (un)subscribes made while Redis is away are sent when it
    // returns, and node-redis re-subscribes every channel after a reconnect.
    const conn = this.duplicate({});
    this.sub = conn;
    this.subConnected = this.open(conn);
    return conn;
  }

  private duplicate(overrides: { disableOfflineQueue?: boolean }): Conn {
    const template = this.template as unknown as { duplicate(o: object): Conn };
    const dup = template.duplicate;
    if (!this.cluster) return dup.call(template, overrides);
    // A cluster's per-node options live in `defaults`, which duplicate() would replace.
    const defaults = (this.template as unknown as { _options?: { defaults?: object } })._options?.defaults;
    return dup.call(template, { defaults: { ...defaults, ...overrides } });
  }

  private open(conn: Conn): Promise<void> {
    conn.on('error', (err) => {
      if (!this.closed) this.options.onError(err instanceof Error ? err : new Error(String(err)));
    });
    const p = conn.connect().then(
      () => {
        if (this.cluster && conn === this.pubRaw) this.setUp(true);
      },
      (err: unknown) => {
        if (!this.closed) this.options.onError(err instanceof Error ? err : new Error(String(err)));
      },
    );
    this.connecting.push(p);
    return p;
  }

  private setUp(up: boolean): void {
    if (this.upState === up || this.closed) return;
    this.upState = up;
    this.options.onState(up);
  }

  /** Opens the connections (both, or the publisher only) and resolves once they are up. */
  async ready(subscriber: boolean): Promise<void> {
    this.publisher();
    if (subscriber) this.subscriber();
    await Promise.all(this.connecting);
  }

  /** Is the publishing connection up (standalone: ready; cluster: connected once)? */
  get up(): boolean {
    return this.upState;
  }

  /** Resolves with the number of Redis subscribers that got it (ours included). */
  publish(channel: string, message: Buffer): Promise<number> {
    if (this.closed) return Promise.reject(new Error('the fan-out is closed'));
    const pub = this.publisher();
    if (this.cluster) return pub.sPublish(channel, message);
    if (this.pubRaw?.isReady !== true) return Promise.reject(new NotConnectedError());
    return pub.publish(channel, message);
  }

  // (Un)subscribes wait for the subscriber's first connection and keep their call order.
  subscribe(channel: string, listener: MessageListener): Promise<void> {
    const sub = this.subscriber();
    return this.subConnected.then(() =>
      this.cluster ? sub.sSubscribe(channel, listener, true) : sub.subscribe(channel, listener, true),
    );
  }

  unsubscribe(channel: string, listener: MessageListener): Promise<void> {
    const sub = this.subscriber();
    return this.subConnected.then(() =>
      this.cluster ? sub.sUnsubscribe(channel, listener, true) : sub.unsubscribe(channel, listener, true),
    );
  }

  /**
   * The number of Redis connections subscribed to `channel` (one per process that has
   * local subscribers): PUBSUB NUMSUB, or on a Cluster PUBSUB SHARDNUMSUB on the channel's
   * master. One round trip.
   */
  async subscriberCount(channel: string): Promise<number> {
    const pub = this.publisher();
    const reply = this.cluster
      ? await pub.sendCommand(channel, true, ['PUBSUB', 'SHARDNUMSUB', channel])
      : await pub.sendCommand(['PUBSUB', 'NUMSUB', channel]);
    const pair = reply as [unknown, unknown];
    return Number(pair[1]);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const conns = [this.pubRaw, this.sub].filter((c): c is Conn => c !== undefined);
    // Up: QUIT after the replies still awaited. Down: drop at once (pending commands fail).
    const graceful = this.upState;
    await Promise.all(
      conns.map(async (c) => {
        if (graceful && c.isOpen) await c.close().catch(() => destroyQuietly(c));
        else destroyQuietly(c);
      }),
    );
  }
}

function destroyQuietly(c: Conn): void {
  try {
    c.destroy();
  } catch {
    // not open: nothing to release
  }
}
