// The fan-out seam of WebSocketServer: which topics are open, what was published, and
// delivery of messages from elsewhere. Two servers joined by an in-process bus (a real
// Fanout, the shape @wskit/redis has without Redis).
import { type Fanout, type FanoutTarget, type PublishOptions, WebSocketServer } from '@wskit/core';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, HOST, open, waitFor, withTimeout } from '../../../../test/support/clients.js';
import { serve } from './util.js';

afterEach(cleanup);

class Bus {
  readonly members: BusFanout[] = [];
}

class BusFanout implements Fanout {
  readonly log: string[] = [];
  target: FanoutTarget | undefined;
  readonly open = new Set<string>();
  constructor(private readonly bus: Bus) {
    bus.members.push(this);
  }
  attach(server: FanoutTarget): void {
    this.target = server;
  }
  topicOpened(topic: string): void {
    this.log.push(`open ${topic}`);
    this.open.add(topic);
  }
  topicClosed(topic: string): void {
    this.log.push(`close ${topic}`);
    this.open.delete(topic);
  }
  published(topic: string, payload: Buffer, opts: Required<PublishOptions>, local: number): void {
    this.log.push(
      `published ${topic} ${payload.length}B binary=${opts.binary} compress=${opts.compress} local=${local}`,
    );
    for (const m of this.bus.members) {
      if (m !== this && m.open.has(topic)) m.target?.deliverLocal(topic, payload, opts);
    }
  }
}

const subscriber = (ws: import('@wskit/core').WebSocket, req: import('@wskit/core').UpgradeRequest) => {
  for (const t of (req.query.get('topics') ?? '').split(',')) if (t !== '') ws.subscribe(t);
  void ws.send('ready');
};

async function client(port: number, topics: string, deflate = false) {
  const ws = await open(`ws://${HOST}:${port}/?topics=${topics}`, { perMessageDeflate: deflate });
  expect((await withTimeout(ws.receive(), 5000, 'ready'))?.text()).toBe('ready');
  return ws;
}

describe('WebSocketServer fan-out', () => {
  it('opens a topic on its first subscriber and closes it after the last, connection ends included', async () => {
    const fanout = new BusFanout(new Bus());
    const wss = new WebSocketServer({ fanout }).route('/*', subscriber);
    const port = await serve(wss);
    const a = await client(port, 'news,sport');
    const b = await client(port, 'news');
    expect(fanout.log).toEqual(['open news', 'open sport']);
    a.terminate();
    await waitFor(() => fanout.log.length === 3);
    expect(fanout.log[2]).toBe('close sport');
    await b.close();
    await waitFor(() => fanout.log.length === 4);
    expect(fanout.log[3]).toBe('close news');
  });

  it('setFanout() reports the topics already open, and a second fan-out is refused', async () => {
    const wss = new WebSocketServer().route('/*', subscriber);
    const port = await serve(wss);
    await client(port, 'a,b');
    const fanout = new BusFanout(new Bus());
    wss.setFanout(fanout);
    expect(fanout.target).toBe(wss);
    expect(fanout.log).toEqual(['open a', 'open b']);
    expect(() => wss.setFanout(new BusFanout(new Bus()))).toThrow(/already has a fan-out/);
  });

  it('publish() delivers locally once, tells the fan-out, and messages from elsewhere are not re-published', async () => {
    const bus = new Bus();
    const f1 = new BusFanout(bus);
    const f2 = new BusFanout(bus);
    const s1 = new WebSocketServer({ fanout: f1 }).route('/*', subscriber);
    const s2 = new WebSocketServer({ fanout: f2 }).route('/*', subscriber);
    const [p1, p2] = [await serve(s1), await serve(s2)];
    const a = await client(p1, 'room');
    const b = await client(p2, 'room', true);
    const c = await client(p2, 'room');

    expect(s1.publish('room', 'hi')).toBe(1);
    expect(s2.publish('room', Buffer.from([0, 255]), { compress: true })).toBe(2);
    for (const ws of [a, b, c]) {
      const first = await withTimeout(ws.receive(), 5000, 'first');
      const second = await withTimeout(ws.receive(), 5000, 'second');
      expect([first?.type, first?.text()]).toEqual(['text', 'hi']);
      expect(second?.type).toBe('binary');
      expect([...(second?.data ?? [])]).toEqual([0, 255]);
    }
    expect(f1.log.filter((l) => l.startsWith('published'))).toEqual([
      'published room 2B binary=false compress=false local=1',
    ]);
    expect(f2.log.filter((l) => l.startsWith('published'))).toEqual([
      'published room 2B binary=true compress=true local=2',
    ]);
    // deliverLocal() reaches only local subscribers and tells nobody.
    expect(s1.deliverLocal('room', 'local only')).toBe(1);
    expect((await withTimeout(a.receive(), 5000, 'local'))?.text()).toBe('local only');
    expect(f1.log.filter((l) => l.startsWith('published'))).toHaveLength(1);
    expect(b.bufferedAmount + c.bufferedAmount).toBe(0);
  });

  it('publish(..., { compress: true }) reaches deflate and plain subscribers alike', async () => {
    const wss = new WebSocketServer({ perMessageDeflate: true }).route('/*', subscriber);
    const port = await serve(wss);
    const zipped = await client(port, 't', true);
    const plain = await client(port, 't', false);
    expect(zipped.extensions).toMatch(/permessage-deflate/);
    const text = 'abc'.repeat(2000);
    expect(wss.publish('t', text, { compress: true })).toBe(2);
    expect(wss.publish('t', 'after')).toBe(2);
    for (const ws of [zipped, plain]) {
      expect((await withTimeout(ws.receive(), 5000, 'big'))?.text()).toBe(text);
      expect((await withTimeout(ws.receive(), 5000, 'after'))?.text()).toBe('after'); // in order
    }
  });
});
