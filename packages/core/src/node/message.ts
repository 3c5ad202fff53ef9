/** A complete data message. */
export class Message {
  readonly type: 'text' | 'binary';
  readonly data: Buffer;

  constructor(type: 'text' | 'binary', data: Buffer) {
    this.type = type;
    this.data = data;
  }

  get size(): number {
    return this.data.length;
  }

  text(): string {
    return this.data.toString('utf8');
  }

  json(): unknown {
    return JSON.parse(this.text());
  }
}

/** What send() takes: text as a string, binary as any ArrayBufferView or ArrayBuffer. */
export type Data = string | ArrayBufferView | ArrayBuffer;

/** The bytes of a message payload, without copying Buffers and views. */
export function toPayload(data: Data): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (Buffer.isBuffer(data)) return data;
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  throw new TypeError('send() takes a string, an ArrayBufferView or an ArrayBuffer');
}
