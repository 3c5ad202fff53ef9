// Three server processes on a real 3-master Redis Cluster (sharded pub/sub, Redis 7):
// exactly-once in-order delivery per topic, and the loss and return of one master.
import { createCluster } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Client,
  clusterOk,
  HOST,
  type Received,
  type RedisInstance,
  redisAvailable,
  ServerProcess,
  startCluster,
  waitFor,
} from './harness.js';
import { message, parse, range } from './messages.js';

const TOPICS = ['t0', 't1', 't2', 't3', 't4', 't5'];
const N = 20; // messages per publisher per topic per round
/** Sequence numbers of topic `t` (so a received message tells its topic). */
const seqs = (t: number, from: number, to: number) => range(from, to).map((i) => t * 1000 + i);

/** Exactly once, in publish order per publisher and topic (Cluster orders per shard). */
function expectPerTopic(got: Received[], expected: Map<string, number[]>): void {
  const seen = new Map<string, number[]>();
  for (const m of got) {
    const { pub, seq } = parse(m);
    expect(m.type).toBe(seq % 2 === 0 ? 'text' : 'binary');
    const key = `${pub}/t${Math.floor(seq / 1000)}`;
    const list = seen.get(key) ?? [];
    seen.set(key, list);
    list.push(seq);
  }
  expect(Object.fromEntries(seen)).toEqual(Object.fromEntries(expected));
}

describe.skipIf(!redisAvailable())('@wskit/redis on a 3-master Redis Cluster (sharded pub/sub)', () => {
  let nodes: RedisInstance[] = [];
  let servers: ServerProcess[] = [];
  let clients: Client[] = [];
  let probe: ReturnType<typeof createCluster>;
  const owner = new Map<string, RedisInstance>(); // topic -> the master that owns its slot

  const shardNumsub = async (topic: string) => {
    const channel = `wskit:${topic}`;
    const reply = (await probe.sendCommand(channel, true, ['PUBSUB', 'SHARDNUMSUB', channel])) as [
      unknown,
      unknown,
    ];
    return Number(reply[1]);
  };

  beforeAll(async () => {
    nodes = await startCluster(3);
    // CLUSTER NODES: "<id> <host:port@bus> <flags> ... <slot ranges>" per node.
    const ranges: Array<{ node: RedisInstance; from: number; to: number }> = [];
    for (const line of (await nodes[0]!.cli('cluster', 'nodes')).trim().split('\n')) {
      const fields = line.split(' ');
      const port = Number(fields[1]!.split('@')[0]!.split(':')[1]);
      const node = nodes.find((n) => n.port === port)!;
      for (const r of fields.slice(8)) {
        const [from, to = from] = r.split('-').map(Number);
        ranges.push({ node, from: from!, to: to! });
      }
    }
    for (const t of TOPICS) {
      const slot = Number((await nodes[0]!.cli('cluster', 'keyslot', `wskit:${t}`)).trim());
      owner.set(t, ranges.find((r) => slot >= r.from && slot <= r.to)!.node);
    }
    probe = createCluster({ rootNodes: nodes.map((n) => ({ url: n.url })) });
    probe.on('error', () => {});
    await probe.connect();
    const cluster = nodes.map((n) => ({ host: HOST, port: n.port }));
    servers = [0, 1, 2].map(() => new ServerProcess({ cluster }));
    await Promise.all(servers.map((s) => s.ready()));
    for (const s of servers) {
      clients.push(await Client.open(s.port, TOPICS, false), await Client.open(s.port, TOPICS, true));
    }
    for (const t of TOPICS) await waitFor(async () => (await shardNumsub(t)) === 3, `3 subscribers of ${t}`);
  });

  afterAll(async () => {
    for (const c of clients) c.ws.terminate();
    await Promise.all(servers.map((s) => s.kill()));
    await probe?.close().catch(() => {});
    await Promise.all(nodes.map((n) => n.stop()));
    clients = [];
  });

  it('spreads the topics over the masters', () => {
    expect(owner.size).toBe(TOPICS.length);
    expect(new Set(owner.values()).size).toBeGreaterThanOrEqual(2);
  });

  it('delivers every message exactly once, in order per publisher and topic', async () => {
    const outcomes = await Promise.all(
      servers.flatMap((s, pub) =>
        TOPICS.flatMap((t, ti) =>
          seqs(ti, 0, N).map((seq) => s.publish(t, message(pub, seq), { compress: seq % 3 === 0 })),
        ),
      ),
    );
    for (const o of outcomes) expect(o).toMatchObject({ ok: true, local: 2, remote: 2 });
    const expected = new Map<string, number[]>();
    for (const pub of [0, 1, 2])
      for (const ti of TOPICS.keys()) expected.set(`${pub}/t${ti}`, seqs(ti, 0, N));
    for (const c of clients) {
      await c.until(3 * TOPICS.length * N);
      expectPerTopic(c.got, expected);
    }
  });

  it('survives the loss of one master: its topics fail remotely, deliver locally, and resume after', async () => {
    for (const c of clients) c.got.length = 0;
    const victim = owner.get('t0')!;
    const down = TOPICS.filter((t) => owner.get(t) === victim);
    const alive = TOPICS.filter((t) => owner.get(t) !== victim);
    expect(alive.length).toBeGreaterThan(0);
    await victim.kill();

    // Topics of the dead master: reported failed, still delivered to local subscribers.
    const ti0 = TOPICS.indexOf(down[0]!);
    const failed = await Promise.all(
      seqs(ti0, 0, 3).map((seq) => servers[0]!.publish(down[0]!, message(0, seq))),
    );
    for (const o of failed) expect(o).toMatchObject({ ok: false, local: 2 });
    // Topics of the other masters keep working across processes.
    const ti1 = TOPICS.indexOf(alive[0]!);
    const ok = await Promise.all(
      seqs(ti1, 0, 3).map((seq) => servers[1]!.publish(alive[0]!, message(1, seq))),
    );
    for (const o of ok) expect(o).toMatchObject({ ok: true, local: 2, remote: 2 });
    for (const [i, c] of clients.entries()) {
      const onPublisher0 = Math.floor(i / 2) === 0;
      await c.until(3 + (onPublisher0 ? 3 : 0));
      const expected = new Map([[`1/t${ti1}`, seqs(ti1, 0, 3)]]);
      if (onPublisher0) expected.set(`0/t${ti0}`, seqs(ti0, 0, 3));
      expectPerTopic(c.got, expected);
    }

    await victim.start(); // same port and nodes.conf: it rejoins as the owner of its slots
    await clusterOk(nodes);
    // Every process re-subscribed the topics of that master by itself.
    for (const t of down)
      await waitFor(async () => (await shardNumsub(t)) === 3, `${t} re-subscribed`, 30_000);

    for (const c of clients) c.got.length = 0;
    const after = await Promise.all(
      servers.flatMap((s, pub) =>
        down.map((t) => s.publish(t, message(pub, TOPICS.indexOf(t) * 1000 + 500))),
      ),
    );
    for (const o of after) expect(o).toMatchObject({ ok: true, local: 2, remote: 2 });
    const expected = new Map<string, number[]>();
    for (const pub of [0, 1, 2])
      for (const t of down) expected.set(`${pub}/t${TOPICS.indexOf(t)}`, [TOPICS.indexOf(t) * 1000 + 500]);
    for (const c of clients) {
      await c.until(3 * down.length);
      expectPerTopic(c.got, expected);
    }
  });
});
