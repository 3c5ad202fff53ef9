// The raw-socket load: plain node:net sockets that do the HTTP Upgrade handshake
// themselves, then send pre-built masked frames (each frame built once, with a fixed
// mask, and the same bytes written again and again) and count the echoes by reading only
// the frame headers. So the load generator costs little next to the server it measures.
//
// Also here: the raw-TCP ceiling for this mode (a node:net server that echoes the same
// framed bytes), and what `ws` uses to mask (bufferutil or not).
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { createServer as createNetServer, connect as netConnect } from 'node:net';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
/** One fixed key for every connection: the handshake is not what is measured. */
const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const ACCEPT = acceptFor(KEY);
/** A fixed, non-trivial masking key (RFC 6455 §5.3 wants it unpredictable; no server can tell). */
const MASK = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);

function acceptFor(key) {
  return createHash('sha1')
    .update(key + GUID)
    .digest('base64');
}

/** The payload of every message: random bytes, or ASCII letters for text (valid UTF-8). */
export function loadPayload(size, binary) {
  const p = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) p[i] = binary ? (Math.random() * 256) | 0 : 97 + ((Math.random() * 26) | 0);
  return p;
}

/** One complete client frame (FIN, masked with MASK), as one buffer. */
export function buildFrame(payload, binary) {
  const len = payload.length;
  const lenBytes = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const header = 2 + lenBytes + 4;
  const frame = Buffer.allocUnsafe(header + len);
  frame[0] = 0x80 | (binary ? 0x2 : 0x1);
  if (lenBytes === 0) frame[1] = 0x80 | len;
  else if (lenBytes === 2) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(len, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeUInt32BE(Math.floor(len / 2 ** 32), 2);
    frame.writeUInt32BE(len >>> 0, 6);
  }
  MASK.copy(frame, 2 + lenBytes);
  for (let i = 0; i < len; i++) frame[header + i] = payload[i] ^ MASK[i & 3];
  return frame;
}

/** Bytes in a frame header starting at `buf[off]`, or 0 if fewer than that are there. */
function headerSize(buf, off, avail) {
  if (avail < 2) return 0;
  const b1 = buf[off + 1];
  const l = b1 & 0x7f;
  const n = 2 + (l === 126 ? 2 : l === 127 ? 8 : 0) + (b1 & 0x80 ? 4 : 0);
  return avail >= n ? n : 0;
}

/**
 * Finds frame boundaries in a byte stream without looking at payloads: per chunk, the
 * number of data messages completed (FIN frames of opcode 0-2; control frames are
 * skipped), and where the last complete frame ended. Optionally checks that every
 * message has `expectedSize` bytes.
 */
export class FrameScanner {
  /** Remaining payload bytes of the current frame (-1: between frames). */
  skip = -1;
  opcode = 0;
  fin = false;
  frameLength = 0;
  messageBytes = 0;
  /** Partial header carried over from the previous chunk. */
  hdr = Buffer.alloc(14);
  hdrLength = 0;
  /** Offset just after the last frame completed by the last scan() (-1: none). */
  lastEnd = -1;
  wrongSizes = 0;
  closeSeen = false;

  constructor(expectedSize = -1) {
    this.expected = expectedSize;
  }

  /** Scans one chunk; returns the number of data messages it completed. */
  scan(chunk) {
    const len = chunk.length;
    let pos = 0;
    let messages = 0;
    this.lastEnd = -1;
    while (pos < len) {
      if (this.skip > 0) {
        const take = Math.min(this.skip, len - pos);
        this.skip -= take;
        pos += take;
        if (this.skip > 0) break;
        messages += this.frameEnd();
        this.lastEnd = pos;
        continue;
      }
      let buf = chunk;
      let off = pos;
      let n;
      if (this.hdrLength === 0) {
        n = headerSize(chunk, pos, len - pos);
        if (n === 0) {
          this.carry(chunk, pos, len);
          return messages;
        }
        pos += n;
      } else {
        // A header split across chunks: gather it byte by byte (rare).
        n = headerSize(this.hdr, 0, this.hdrLength);
        while (n === 0 && pos < len) {
          this.hdr[this.hdrLength++] = chunk[pos++];
          n = headerSize(this.hdr, 0, this.hdrLength);
        }
        if (n === 0) return messages;
        buf = this.hdr;
        off = 0;
        this.hdrLength = 0;
      }
      this.fin = (buf[off] & 0x80) !== 0;
      this.opcode = buf[off] & 0x0f;
      const l = buf[off + 1] & 0x7f;
      this.frameLength =
        l < 126
          ? l
          : l === 126
            ? buf.readUInt16BE(off + 2)
            : buf.readUInt32BE(off + 2) * 2 ** 32 + buf.readUInt32BE(off + 6);
      this.skip = this.frameLength;
      if (this.skip === 0) {
        messages += this.frameEnd();
        this.lastEnd = pos;
      }
    }
    return messages;
  }

  carry(chunk, from, to) {
    for (let i = from; i < to; i++) this.hdr[this.hdrLength++] = chunk[i];
  }

  frameEnd() {
    this.skip = -1;
    if (this.opcode >= 0x8) {
      if (this.opcode === 0x8) this.closeSeen = true;
      return 0;
    }
    this.messageBytes += this.frameLength;
    if (!this.fin) return 0;
    if (this.expected >= 0 && this.messageBytes !== this.expected) this.wrongSizes++;
    this.messageBytes = 0;
    return 1;
  }
}

/**
 * Opens a socket and does the client's side of the opening handshake (RFC 6455 §4.1),
 * checking the status and Sec-WebSocket-Accept. Resolves with the socket and whatever
 * bytes followed the response head.
 */
export function rawHandshake(url) {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: u.hostname, port: Number(u.port) });
    socket.setNoDelay(true);
    let head = Buffer.alloc(0);
    const fail = (err) => {
      socket.destroy();
      reject(err);
    };
    const onData = (chunk) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > 16384) fail(new Error('handshake response head too long'));
        return;
      }
      socket.off('data', onData);
      socket.off('error', fail);
      const text = head.subarray(0, end).toString('latin1');
      if (!/^HTTP\/1\.1 101 /.test(text)) return fail(new Error(`handshake: ${text.split('\r\n')[0]}`));
      const accept = /\r\nsec-websocket-accept:\s*(\S+)/i.exec(text)?.[1];
      if (accept !== ACCEPT) return fail(new Error(`handshake: Sec-WebSocket-Accept ${accept}`));
      resolve({ socket, rest: head.subarray(end + 4) });
    };
    socket.on('data', onData);
    socket.on('error', fail);
    socket.once('connect', () => {
      socket.write(
        `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\n` +
          `Connection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
  });
}

/**
 * The ceiling of the raw-socket mode: a node:net server that answers the Upgrade request
 * (101 with the right Sec-WebSocket-Accept) and then echoes every frame as it came: it
 * finds the frame boundaries from the headers (FrameScanner), holds the bytes of a frame
 * until the frame is complete, and writes the complete frames of each read back in one
 * corked batch (one writev), still masked. It writes 4 bytes more per message than a
 * WebSocket server does (the masking key) and does none of a WebSocket server's work on
 * the payload: no unmasking, no UTF-8 validation, no message object, no limits.
 */
export async function startCeilingServer(host) {
  const sockets = new Set();
  const server = createNetServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    let head = Buffer.alloc(0);
    const scanner = new FrameScanner();
    /** Bytes of the frame in progress, from earlier reads. */
    let pending = [];
    const echo = (chunk) => {
      scanner.scan(chunk);
      const end = scanner.lastEnd;
      if (end < 0) {
        pending.push(chunk);
        return;
      }
      socket.cork();
      for (const p of pending) socket.write(p);
      socket.write(end === chunk.length ? chunk : chunk.subarray(0, end));
      socket.uncork();
      pending = end === chunk.length ? [] : [chunk.subarray(end)];
    };
    const onHead = (chunk) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onHead);
      const key = /\r\nsec-websocket-key:\s*(\S+)/i.exec(head.subarray(0, end).toString('latin1'))?.[1];
      if (key === undefined) {
        socket.destroy();
        return;
      }
      socket.write(
        `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Accept: ${acceptFor(key)}\r\n\r\n`,
      );
      socket.on('data', echo);
      if (head.length > end + 4) echo(head.subarray(end + 4));
    };
    socket.on('data', onHead);
  });
  await new Promise((resolve) => server.listen(0, host, resolve));
  const { port } = server.address();
  return {
    urls: { echo: `ws://${host}:${port}/echo` },
    count: () => sockets.size,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * What the `ws` that the bench imports masks with: its lib/buffer-util.js (the same
 * module instance ws uses) replaces its JS mask with a wrapper around bufferutil when
 * `require('bufferutil')` works from ws's own directory, or around Node's built-in when
 * node:http has one (newer Node versions).
 */
export function wsMasking() {
  const require = createRequire(import.meta.url);
  const wsMain = require.resolve('ws');
  const fromWs = createRequire(wsMain);
  const info = { wsVersion: fromWs('./package.json').version, wsPath: wsMain, masking: 'javascript' };
  try {
    const util = fromWs('./lib/buffer-util.js');
    const src = String(util.mask);
    if (src.includes('websocketMask')) info.masking = 'node:http websocketMask';
    else if (src.includes('bufferUtil')) {
      const bu = fromWs('bufferutil');
      const native = /\[native code\]/.test(String(bu.mask));
      info.masking = native ? 'bufferutil (native)' : 'bufferutil (JS fallback)';
      info.bufferutilVersion = fromWs('bufferutil/package.json').version;
    }
  } catch (err) {
    info.error = err instanceof Error ? err.message : String(err);
  }
  info.bufferutil = info.masking === 'bufferutil (native)';
  return info;
}
