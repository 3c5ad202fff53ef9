/** Frame model and opcodes (RFC 6455 §5.2). */

export const Opcode = {
  CONTINUATION: 0x0,
  TEXT: 0x1,
  BINARY: 0x2,
  CLOSE: 0x8,
  PING: 0x9,
  PONG: 0xa,
} as const;

export type DataOpcode = typeof Opcode.TEXT | typeof Opcode.BINARY;

/** RSV bits as they sit in the first header byte, shifted down: RSV1 = 4, RSV2 = 2, RSV3 = 1. */
export const Rsv = { RSV1: 0b100, RSV2: 0b010, RSV3: 0b001 } as const;

export interface Frame {
  fin: boolean;
  /** The three reserved bits: RSV1 = 4, RSV2 = 2, RSV3 = 1. */
  rsv: number;
  opcode: number;
  /** Whether the frame was (inbound) or will be (outbound) masked on the wire. */
  masked: boolean;
  /** Always the unmasked application bytes. */
  payload: Buffer;
}

export const isControlOpcode = (opcode: number): boolean => (opcode & 0x8) !== 0;
export const isKnownOpcode = (opcode: number): boolean =>
  opcode <= 0x2 || opcode === 0x8 || opcode === 0x9 || opcode === 0xa;

/** RFC 6455 §5.5: control frames carry at most 125 bytes of payload. */
export const MAX_CONTROL_PAYLOAD = 125;
