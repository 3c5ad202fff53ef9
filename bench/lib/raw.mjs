// The raw-TCP ceiling: the same messages over plain TCP with the lightest framing that
// still keeps message boundaries — a 5-byte record header (u32 length, u8 type). No
// masking, no UTF-8 validation, no per-connection protocol state: what is left is the
// cost of node:net itself, which no WebSocket library on Node can go below.
import { connect as netConnect } from 'node:net';

export const RECORD_HEADER = 5;
export const TEXT = 1;
export const BINARY = 2;
/** Records up to this size are written as one buffer (like wskit's frame writer). */
const COALESCE_LIMIT = 16 * 1024;

/** Writes one record: the header and the payload in one buffer, or two for big payloads. */
export function writeRecord(socket, data, binary) {
  const type = binary ? BINARY : TEXT;
  if (typeof data === 'string') {
    const len = Buffer.byteLength(data);
    if (len <= COALESCE_LIMIT) {
      const out = Buffer.allocUnsafe(RECORD_HEADER + len);
      out.writeUInt32BE(len, 0);
      out[4] = type;
      out.write(data, RECORD_HEADER);
      return socket.write(out);
    }
    data = Buffer.from(data);
  }
  const len = data.length;
  if (len <= COALESCE_LIMIT) {
    const out = Buffer.allocUnsafe(RECORD_HEADER + len);
    out.writeUInt32BE(len, 0);
    out[4] = type;
    data.copy(out, RECORD_HEADER);
    return socket.write(out);
  }
  const header = Buffer.allocUnsafe(RECORD_HEADER);
  header.writeUInt32BE(len, 0);
  header[4] = type;
  socket.cork();
  socket.write(header);
  const ok = socket.write(data);
  socket.uncork();
  return ok;
}

/** A whole record (header included) as one buffer, to write as is to many sockets. */
export function encodeRecord(payload, binary) {
  const out = Buffer.allocUnsafe(RECORD_HEADER + payload.length);
  out.writeUInt32BE(payload.length, 0);
  out[4] = binary ? BINARY : TEXT;
  payload.copy(out, RECORD_HEADER);
  return out;
}

/** Incremental record parser: chunks in, records out ({ binary, payload, raw }). */
export class RecordParser {
  chunks = [];
  buffered = 0;

  push(chunk) {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  next() {
    if (this.buffered < RECORD_HEADER) return null;
    let first = this.chunks[0];
    if (first.length < RECORD_HEADER) {
      first = Buffer.concat(this.chunks);
      this.chunks = [first];
    }
    const len = first.readUInt32BE(0);
    const total = RECORD_HEADER + len;
    if (this.buffered < total) return null;
    const type = first[4];
    let raw;
    if (first.length >= total) {
      raw = first.subarray(0, total);
      if (first.length === total) this.chunks.shift();
      else this.chunks[0] = first.subarray(total);
    } else {
      raw = Buffer.allocUnsafe(total);
      let filled = 0;
      while (filled < total) {
        const c = this.chunks[0];
        const k = Math.min(c.length, total - filled);
        c.copy(raw, filled, 0, k);
        filled += k;
        if (k === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(k);
      }
    }
    this.buffered -= total;
    return { binary: type === BINARY, payload: raw.subarray(RECORD_HEADER), raw };
  }
}

/** The raw TCP client behind the load generator's connector interface (tcp://host:port). */
export function rawConnector(url, events) {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: u.hostname, port: Number(u.port) });
    socket.setNoDelay(true);
    const parser = new RecordParser();
    let open = false;
    // Like wskit's connection: the writes of one tick leave in one writev.
    let corked = false;
    const uncork = () => {
      corked = false;
      socket.uncork();
    };
    socket.on('data', (chunk) => {
      parser.push(chunk);
      for (let r = parser.next(); r !== null; r = parser.next()) events.message(r.payload.length, r.binary);
    });
    socket.once('connect', () => {
      open = true;
      resolve({
        send: (data, binary) => {
          if (!corked) {
            corked = true;
            socket.cork();
            process.nextTick(uncork);
          }
          writeRecord(socket, data, binary);
        },
        close: () =>
          new Promise((done) => {
            if (socket.destroyed) return done();
            socket.once('close', () => done());
            socket.end();
          }),
        terminate: () => socket.destroy(),
      });
    });
    socket.on('error', (err) => {
      if (open) events.error(err);
      else reject(err);
    });
    socket.on('close', (hadError) => {
      if (open) events.close(hadError ? 1006 : 1000, '');
    });
  });
}
