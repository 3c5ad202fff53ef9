// Request/response over the IPC channel of forked children: the orchestrator (run.mjs)
// drives a server process and a client process per implementation.
import { fork } from 'node:child_process';

/** Forks `script` (with --expose-gc) and returns a handle to call its operations. */
export function spawnWorker(script, name) {
  const child = fork(script, [], {
    execArgv: ['--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let nextId = 0;
  const pending = new Map();
  let exited = false;
  const exit = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      exited = true;
      for (const p of pending.values()) p.reject(new Error(`${name} exited (${code ?? signal})`));
      pending.clear();
      resolve();
    });
  });
  child.on('message', (m) => {
    const p = pending.get(m.id);
    if (p === undefined) return;
    pending.delete(m.id);
    clearTimeout(p.timer);
    if (m.ok) p.resolve(m.value);
    else p.reject(new Error(`${name} ${p.op}: ${m.error}`));
  });
  return {
    name,
    call(op, args = {}, timeoutMs = 120_000) {
      if (exited) return Promise.reject(new Error(`${name} has exited`));
      const id = nextId++;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`${name} ${op}: no answer within ${timeoutMs} ms`));
        }, timeoutMs);
        pending.set(id, { op, resolve, reject, timer });
        child.send({ id, op, args });
      });
    },
    async stop() {
      if (exited) return;
      child.disconnect();
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exit;
      clearTimeout(timer);
    },
  };
}

/** The child's side: answers each request with its handler's result. */
export function serveRequests(handlers) {
  process.on('message', async ({ id, op, args }) => {
    try {
      const handler = handlers[op];
      if (handler === undefined) throw new Error(`unknown operation ${op}`);
      const value = await handler(args);
      process.send({ id, ok: true, value });
    } catch (err) {
      process.send({ id, ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    }
  });
  // The orchestrator is gone (finished, or crashed): so are we.
  process.on('disconnect', () => process.exit(0));
}

/** Collects garbage until the heap settles, then reads the memory figures. */
export async function settledMemory() {
  for (let i = 0; i < 4; i++) {
    await new Promise((resolve) => setTimeout(resolve, 40));
    globalThis.gc?.();
  }
  const { heapUsed, rss, external, arrayBuffers } = process.memoryUsage();
  return { heapUsed, rss, external, arrayBuffers };
}
