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
