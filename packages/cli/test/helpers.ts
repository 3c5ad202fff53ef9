/**
 * Helpers for the CLI tests (not a test file): captured output streams and `wskit ARGS`
 * run in this process with fake streams and signals, stopped after the test.
 */
import { EventEmitter } from 'node:events';
import { PassThrough, Writable } from 'node:stream';
import { onCleanup } from '../../../test/support/clients.js';
import { main } from '../src/index.js';

/** A writable that keeps what was written and can wait for a pattern to show up. */
export class Capture extends Writable {
  text = '';
  private readonly waiters = new Set<() => void>();

  override _write(chunk: Buffer | string, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.feed(chunk);
    cb();
  }

  feed(chunk: Buffer | string): void {
    this.text += chunk.toString();
    for (const w of this.waiters) w();
  }

  waitFor(pattern: RegExp, timeout = 10_000): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = this.text.match(pattern);
        if (m === null) return;
        this.waiters.delete(check);
        clearTimeout(timer);
        resolve(m);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`timed out waiting for ${pattern}; output so far: ${JSON.stringify(this.text)}`));
      }, timeout);
      this.waiters.add(check);
      check();
    });
  }
}

export interface InProcessRun {
  stdin: PassThrough;
  stdout: Capture;
  stderr: Capture;
  signals: EventEmitter;
  exit: Promise<number>;
}

/** Runs `wskit ARGS` in this process; a run still going after the test gets SIGTERM. */
export function runInProcess(args: string[]): InProcessRun {
  const stdin = new PassThrough();
  const stdout = new Capture();
  const stderr = new Capture();
  const signals = new EventEmitter();
  const exit = main(args, {
    stdin,
    stdout,
    stderr,
    onSignal: (listener) => {
      signals.on('signal', listener);
      return () => signals.off('signal', listener);
    },
  });
  let exited = false;
  exit.then(() => {
    exited = true;
  });
  onCleanup(async () => {
    if (!exited) {
      signals.emit('signal', 'SIGTERM');
      stdin.end();
      await exit;
    }
  });
  return { stdin, stdout, stderr, signals, exit };
}
