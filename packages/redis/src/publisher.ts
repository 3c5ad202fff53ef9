import { randomBytes } from 'node:crypto';
import type { Data, PublishOptions } from '@wskit/core';
import { encodeEnvelope, ORIGIN_LENGTH } from './envelope.js';
import { Link, type RedisClientTemplate } from './link.js';

export interface PublisherOptions {
  /** A node-redis v5 client or cluster, used as a template (one duplicate connection). */
  client?: RedisClientTemplate;
  /** Or a redis:// URL of a standalone Redis. */
  url?: string;
  /** The servers' prefix. Default 'wskit:'. */
  prefix?: string;
  /** A publish Redis has not acknowledged after this long (ms) fails. Default 5000. */
  publishTimeout?: number;
}

export interface Publisher {
  /**
   * Publishes to the subscribers of `topic` in every process with a Redis fan-out.
   * Resolves with the number of processes subscribed to the topic; rejects when the
   * message did not reach Redis.
   */
  publish(topic: string, data: Data, opts?: PublishOptions): Promise<number>;
  /** Resolves once connected to Redis. */
  ready(): Promise<void>;
  close(): Promise<void>;
}

/** Publishes to the topics of WebSocket servers from a process that has none (a worker, a cron job). */
export function createPublisher(options: PublisherOptions): Publisher {
  const origin = randomBytes(ORIGIN_LENGTH);
  const prefix = options.prefix ?? 'wskit:';
  let lastError: Error | undefined;
  const link = new Link({
    client: options.client,
    url: options.url,
    publishTimeout: options.publishTimeout ?? 5000,
    // Connection errors surface as rejected publishes; keep the last for ready()'s sake.
    onError: (err) => {
      lastError = err;
    },
    onState: () => {},
  });
  return {
    publish(topic, data, opts = {}) {
      const payload = typeof data === 'string' ? Buffer.from(data) : toBuffer(data);
      const binary = opts.binary ?? typeof data !== 'string';
      return link.publish(prefix + topic, encodeEnvelope(origin, payload, binary, opts.compress ?? false));
    },
    ready: () => link.ready(false).then(() => void lastError),
    close: () => link.close(),
  };
}

function toBuffer(data: Exclude<Data, string>): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
}
