import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Data, Fanout, FanoutTarget, PublishOptions, WebSocketServer } from '@wskit/core';
import { decodeEnvelope, encodeEnvelope, fromOrigin, ORIGIN_LENGTH } from './envelope.js';
import { Link, type RedisClientTemplate } from './link.js';

export interface RedisFanoutOptions {
  /**
   * A node-redis v5 client (`createClient()`) or cluster (`createCluster()`). Used as a
   * template: the fan-out opens its own two connections with `duplicate()`.
   */
  client?: RedisClientTemplate;
  /** Or a redis:// URL of a standalone Redis. */
  url?: string;
  /** Prefix of the Redis channel names: channel = prefix + topic. Default 'wskit:'. */
  prefix?: string;
  /** A publish Redis has not acknowledged after this long (ms) is reported failed. Default 5000. */
  publishTimeout?: number;
}

/** The outcome of `fanout.publish()`. */
export interface PublishReport {
  /** Connections of this process the message was sent to. */
  local: number;
  /** Other processes subscribed to the topic when Redis received the message. */
  remote: number;
}

/** A message that did not reach Redis (it was still delivered locally). */
export class PublishError extends Error {
  readonly topic: string;
  /** Connections of this process the message was sent to anyway. */
  readonly local: number;
  constructor(topic: string, local: number, cause: unknown) {
    super(
      `publish to "${topic}" did not reach Redis: ${cause instanceof Error ? cause.message : String(cause)}`,
      {
        cause,
      },
    );
    this.name = 'PublishError';
    this.topic = topic;
    this.local = local;
  }
}

export interface FanoutStats {
  /** Publishes acknowledged by Redis. */
  published: number;
  /** Publishes that did not reach Redis (each one was reported). */
  failed: number;
  /** Messages from other processes delivered locally. */
  received: number;
}

interface Waiter {
  resolve: (report: PublishReport) => void;
  reject: (err: PublishError) => void;
}

/**
 * Carries `wss.publish()` to every process attached to the same Redis. Events:
 * 'error' (a PublishError, or a Redis connection error), 'down' and 'up' (the publishing
 * connection was lost / is back). Without an 'error' listener, the first error of an
 * outage becomes a process warning instead (never a crash, never silence).
 */
export class RedisFanout extends EventEmitter implements Fanout {
  /** Names this process in every message it publishes, so it can ignore its own echo. */
  readonly origin: Buffer = randomBytes(ORIGIN_LENGTH);
  readonly stats: FanoutStats = { published: 0, failed: 0, received: 0 };
  private readonly prefix: string;
  private readonly link: Link;
  private target: FanoutTarget | undefined;
  private readonly open = new Set<string>();
  private waiter: Waiter | undefined;
  private warned = false;
  private closing = false;

  constructor(options: RedisFanoutOptions) {
    super();
    this.prefix = options.prefix ?? 'wskit:';
    this.link = new Link({
      client: options.client,
      url: options.url,
      publishTimeout: options.publishTimeout ?? 5000,
      onError: (err) => this.report(err),
      onState: (up) => {
        if (up) this.warned = false;
        this.emit(up ? 'up' : 'down');
      },
    });
  }

  /** Is Redis sharded (Cluster, SPUBLISH/SSUBSCRIBE) or standalone (PUBLISH/SUBSCRIBE)? */
  get sharded(): boolean {
    return this.link.cluster;
  }

  /** Is the publishing connection to Redis up? */
  get connected(): boolean {
    return this.link.up;
  }

  /** Resolves once the connections to Redis are established (it waits while Redis is away). */
  ready(): Promise<void> {
    return this.link.ready(true);
  }

  // ---- the Fanout interface (called by the server) ------------------------------------

  attach(server: FanoutTarget): void {
    if (this.target !== undefined) throw new Error('a RedisFanout serves one WebSocketServer');
    this.target = server;
    void this.link.ready(true).catch(() => {}); // connect now, not at the first publish
  }

  topicOpened(topic: string): void {
    if (this.closing) return;
    this.open.add(topic);
    this.link.subscribe(this.prefix + topic, this.onMessage).catch((err: unknown) => this.report(err));
  }

  topicClosed(topic: string): void {
    if (this.closing) return;
    this.open.delete(topic);
    this.link.unsubscribe(this.prefix + topic, this.onMessage).catch((err: unknown) => this.report(err));
  }

  published(topic: string, payload: Buffer, opts: Required<PublishOptions>, local: number): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    const envelope = encodeEnvelope(this.origin, payload, opts.binary, opts.compress);
    // Our own subscriber connection gets the message too (and drops it): not "remote".
    const echo = this.open.has(topic) ? 1 : 0;
    this.link.publish(this.prefix + topic, envelope).then(
      (receivers) => {
        this.stats.published++;
        waiter?.resolve({ local, remote: Math.max(0, receivers - echo) });
      },
      (cause: unknown) => {
        this.stats.failed++;
        const err = new PublishError(topic, local, cause);
        if (waiter !== undefined) waiter.reject(err);
        else this.report(err);
      },
    );
  }

  // ---- API ----------------------------------------------------------------------------

  /**
   * `wss.publish()` with its outcome: resolves when Redis has the message, rejects with a
   * PublishError when it could not be published to other processes (local subscribers
   * got it either way). A rejected publish emits no 'error' event.
   */
  publish(topic: string, data: Data, opts: PublishOptions = {}): Promise<PublishReport> {
    const target = this.target;
    if (target === undefined) return Promise.reject(new Error('the fan-out is not attached to a server'));
    return new Promise<PublishReport>((resolve, reject) => {
      this.waiter = { resolve, reject };
      try {
        target.publish(topic, data, opts);
      } finally {
        // publish() threw (bad data) before reaching published(): don't leak the waiter.
        this.waiter = undefined;
      }
    });
  }

  /**
   * Processes subscribed to `topic` across the cluster (Redis subscribers, one per process
   * with local subscribers, this one included): one PUBSUB NUMSUB (SHARDNUMSUB on a
   * Cluster) round trip. It does not count WebSocket connections.
   */
  subscribedProcesses(topic: string): Promise<number> {
    return this.link.subscriberCount(this.prefix + topic);
  }

  /** Closes the fan-out's Redis connections (WebSocketServer.close() calls it). */
  async close(): Promise<void> {
    this.closing = true;
    await this.link.close();
  }

  // ---- internals ----------------------------------------------------------------------

  private readonly onMessage = (message: Buffer, channel: Buffer): void => {
    if (fromOrigin(message, this.origin)) return; // our own publish: already delivered locally
    const envelope = decodeEnvelope(message);
    const target = this.target;
    if (envelope === null || target === undefined) return;
    const topic = channel.toString('utf8', Buffer.byteLength(this.prefix));
    this.stats.received++;
    target.deliverLocal(topic, envelope.payload, { binary: envelope.binary, compress: envelope.compress });
  };

  private report(err: unknown): void {
    if (this.closing) return;
    const error = err instanceof Error ? err : new Error(String(err));
    if (this.listenerCount('error') > 0) {
      this.emit('error', error);
      return;
    }
    if (this.warned) return;
    this.warned = true; // once per outage: reset when the connection is back
    process.emitWarning(
      `@wskit/redis: ${error.message} (listen to 'error' on the fan-out for every failure)`,
    );
  }
}

/**
 * Attaches a Redis fan-out to `wss`: after it, `wss.publish(topic, data, opts)` also
 * reaches the subscribers of every other process attached to the same Redis. Without
 * `wss`, returns a fan-out to give to a server as its `fanout` option (or to an adapter:
 * `expressWs(app, server, { fanout })`, Fastify's and Koa's options alike).
 */
export function redisFanout(wss: WebSocketServer, options: RedisFanoutOptions): RedisFanout;
export function redisFanout(options: RedisFanoutOptions): RedisFanout;
export function redisFanout(a: WebSocketServer | RedisFanoutOptions, b?: RedisFanoutOptions): RedisFanout {
  if (b === undefined) return new RedisFanout(a as RedisFanoutOptions);
  const fanout = new RedisFanout(b);
  (a as WebSocketServer).setFanout(fanout);
  return fanout;
}
