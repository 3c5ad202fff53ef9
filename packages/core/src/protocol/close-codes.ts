/**
 * Close status codes (RFC 6455 §7.4.1, IANA "WebSocket Close Code Number Registry")
 * and the symbolic reasons wskit uses for them.
 */

export const CloseCode = {
  NORMAL_CLOSURE: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  UNSUPPORTED_DATA: 1003,
  NO_STATUS_RCVD: 1005,
  ABNORMAL_CLOSURE: 1006,
  INVALID_FRAME_PAYLOAD_DATA: 1007,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  MANDATORY_EXT: 1010,
  INTERNAL_SERVER_ERROR: 1011,
  SERVICE_RESTART: 1012,
  TRY_AGAIN_LATER: 1013,
  BAD_GATEWAY: 1014,
  TLS_HANDSHAKE: 1015,
} as const;

export type CloseReason =
  | 'normal-closure'
  | 'going-away'
  | 'protocol-error'
  | 'unsupported-data'
  | 'no-status-rcvd'
  | 'abnormal-closure'
  | 'invalid-frame-payload-data'
  | 'policy-violation'
  | 'message-too-big'
  | 'mandatory-ext'
  | 'internal-server-error'
  | 'service-restart'
  | 'try-again-later'
  | 'bad-gateway'
  | 'tls-handshake';

const CODE_TO_REASON = new Map<number, CloseReason>([
  [1000, 'normal-closure'],
  [1001, 'going-away'],
  [1002, 'protocol-error'],
  [1003, 'unsupported-data'],
  [1005, 'no-status-rcvd'],
  [1006, 'abnormal-closure'],
  [1007, 'invalid-frame-payload-data'],
  [1008, 'policy-violation'],
  [1009, 'message-too-big'],
  [1010, 'mandatory-ext'],
  [1011, 'internal-server-error'],
  [1012, 'service-restart'],
  [1013, 'try-again-later'],
  [1014, 'bad-gateway'],
  [1015, 'tls-handshake'],
]);

const REASON_TO_CODE = new Map<string, number>([...CODE_TO_REASON].map(([code, reason]) => [reason, code]));

/** `closeCodeToReason(1009)` -> 'message-too-big'. Throws RangeError for a code without a name. */
export function closeCodeToReason(code: number): CloseReason {
  const reason = CODE_TO_REASON.get(code);
  if (reason === undefined) throw new RangeError(`No symbolic reason for close code ${code}`);
  return reason;
}

/** `reasonToCloseCode('message-too-big')` -> 1009. Throws RangeError for an unknown reason. */
export function reasonToCloseCode(reason: string): number {
  const code = REASON_TO_CODE.get(reason);
  if (code === undefined) throw new RangeError(`Unknown close reason '${reason}'`);
  return code;
}

/** Like closeCodeToReason, but never throws: application codes map to 'application', others to 'unknown'. */
export function describeCloseCode(code: number): string {
  return CODE_TO_REASON.get(code) ?? (code >= 3000 && code <= 4999 ? 'application' : 'unknown');
}

/**
 * May this code appear in a Close frame on the wire? RFC 6455 §7.4.1/§7.4.2:
 * 0-999 are never used; 1004 is reserved; 1005, 1006 and 1015 are reserved for local
 * reporting only; 1016-2999 are for future RFCs (unassigned ones are invalid);
 * 3000-4999 are registered/private application codes.
 */
export function isValidWireCloseCode(code: number): boolean {
  if (!Number.isInteger(code)) return false;
  if (code >= 1000 && code <= 1014) return code !== 1004 && code !== 1005 && code !== 1006;
  return code >= 3000 && code <= 4999;
}
