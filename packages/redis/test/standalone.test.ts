// Three server processes on one real redis-server (classic pub/sub), clients spread over
// them: exactly-once in-order delivery, an outage of Redis, the loss of a server process.
import { createPublisher } from '@wskit/redis';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Client,
  type RedisInstance,
  redisAvailable,
  ServerProcess,
  startStandalone,
  waitFor,
} from './harness.js';
import { expectExactlyOnceInOrder, message, range } from './messages.js';

const N = 40; // messages per publisher per round

describe.skipIf(!redisAvailable())('@wskit/redis on standalone Redis, three processes', () => {
  let redis: RedisInstance;
  let servers: ServerProcess[] = [];
  let subscribed: Client[] = []; // on 'room': per server, one plain and one deflate client
  let bystanders: Client[] = []; // on 'other' or on nothing
  let probe: ReturnType<typeof createClient>;

  const numsub = async (channel: string) => {
    const reply = (await probe.sendCommand(['PUBSUB', 'NUMSUB', channel])) as [unknown, unknown];
    return Number(reply[1]);
  };
  const clientsOf = (i: number) => subscribed.filter((_, k) => Math.floor(k / 2) === i);

  beforeAll(async () => {
    redis = await startStandalone();
    probe = createClient({ url: redis.url });
    probe.on('error', () => {});
    await probe.connect();
    servers = [0, 1, 2].map(() => new ServerProcess({ url: redis.url }));
    await Promise.all(servers.map((s) => s.ready()));
    for (const s of servers) {
      subscribed.push(await Client.open(s.port, ['room'], false), await Client.open(s.port, ['room'], true));
      bystanders.push(await Client.open(s.port, ['other'], true), await Client.open(s.port, [], false));
    }
    // One Redis subscription per topic per process, made on the first local subscriber.
    await waitFor(async () => (await numsub('wskit:room')) === 3, 'three subscriptions to wskit:room');
    expect(await numsub('wskit:other')).toBe(3);
  });

  afterAll(async () => {
    for (const c of [...subscribed, ...bystanders]) c.ws.terminate();
    await Promise.all(servers.map((s) => s.kill()));
    await probe?.close().catch(() => {});
    await redis?.stop();
    subscribed = [];
    bystanders = [];
  });

  it('delivers every message exactly once, in order per publisher, text and binary, with and without deflate', async () => {
    const outcomes = await Promise.all(
      servers.flatMap((s, pub) =>
        range(0, N).map((seq) => s.publish('room', message(pub, seq), { compress: seq % 3 === 0 })),
      ),
    );
    for (const o of outcomes) {
      expect(o.ok).toBe(true);
      expect(o.local).toBe(2); // the two subscribed clients of the publishing process
      expect(o.remote).toBe(2); // the two other processes
    }
    const expected = new Map([0, 1, 2].map((pub) => [pub, range(0, N)]));
    for (const c of subscribed) {
      await c.until(3 * N);
      expectExactlyOnceInOrder(c.got, expected);
    }
    // The deflate clients negotiated the extension; the plain ones did not.
    expect(subscribed.map((c) => c.ws.extensions !== '')).toEqual([false, true, false, true, false, true]);
    // Unsubscribed clients got nothing (a ping round trip flushes what might be in flight).
    await Promise.all(bystanders.map((c) => c.ws.ping()));
    for (const c of bystanders) expect(c.got).toEqual([]);
  });

  it('createPublisher() reaches every process from one with no WebSocket server', async () => {
    for (const c of subscribed) c.got.length = 0;
    const publisher = createPublisher({ url: redis.url });
    try {
      await publisher.ready();
      const receivers = await Promise.all(
        range(0, 10).map((seq) => publisher.publish('room', message(7, seq))),
      );
      expect(receivers).toEqual(range(0, 10).map(() => 3));
      for (const c of subscribed) {
        await c.until(10);
        expectExactlyOnceInOrder(c.got, new Map([[7, range(0, 10)]]));
      }
    } finally {
      await publisher.close();
    }
  });

  it('unsubscribes from Redis after the last local subscriber leaves', async () => {
    const extra = await Client.open(servers[0]!.port, ['lonely'], false);
    await waitFor(async () => (await numsub('wskit:lonely')) === 1, 'a subscription to wskit:lonely');
    await extra.ws.close();
    await waitFor(async () => (await numsub('wskit:lonely')) === 0, 'wskit:lonely to be unsubscribed');
  });

  it('keeps local delivery during a Redis outage, reports remote publishes failed, and resumes after', async () => {
    for (const c of subscribed) c.got.length = 0;
    await redis.kill();
    await Promise.all(servers.map((s) => s.until(() => !s.up, 'the fan-out to notice the outage')));

    // Local delivery goes on; the publish is reported as not having reached Redis.
    const during = await Promise.all(range(0, 5).map((seq) => servers[0]!.publish('room', message(0, seq))));
    for (const o of during) {
      expect(o.ok).toBe(false);
      expect(o.local).toBe(2);
      expect(o.error).toMatch(/did not reach Redis/);
    }
    for (const c of clientsOf(0)) {
      await c.until(5);
      expectExactlyOnceInOrder(c.got, new Map([[0, range(0, 5)]]));
    }

    await redis.start(); // same port, same (empty) data
    await Promise.all(servers.map((s) => s.until(() => s.up, 'the fan-out to reconnect')));
    // Every process re-subscribed by itself.
    await waitFor(async () => (await numsub('wskit:room')) === 3, 'subscriptions restored after the outage');

    const after = await Promise.all(
      servers.flatMap((s, pub) => range(5, 5 + N).map((seq) => s.publish('room', message(pub, seq)))),
    );
    for (const o of after) expect(o).toMatchObject({ ok: true, remote: 2 });
    for (const [i, c] of subscribed.entries()) {
      const mine = Math.floor(i / 2) === 0;
      await c.until((mine ? 5 : 0) + 3 * N);
      // At most once: the outage's messages never reach the other processes, even later.
      expectExactlyOnceInOrder(
        c.got,
        new Map([
          [0, mine ? range(0, 5 + N) : range(5, 5 + N)],
          [1, range(5, 5 + N)],
          [2, range(5, 5 + N)],
        ]),
      );
    }
  });

  it('keeps serving when one server process dies', async () => {
    for (const c of subscribed) c.got.length = 0;
    await servers[2]!.kill();
    await waitFor(async () => (await numsub('wskit:room')) === 2, 'the dead process to leave wskit:room');
    const outcomes = await Promise.all(
      [0, 1].flatMap((pub) => range(0, 10).map((seq) => servers[pub]!.publish('room', message(pub, seq)))),
    );
    for (const o of outcomes) expect(o).toMatchObject({ ok: true, local: 2, remote: 1 });
    for (const c of [...clientsOf(0), ...clientsOf(1)]) {
      await c.until(20);
      expectExactlyOnceInOrder(
        c.got,
        new Map([
          [0, range(0, 10)],
          [1, range(0, 10)],
        ]),
      );
    }
  });
});
