// @wskit/core/protocol: the sans-I/O engine and its pieces, for those who drive the
// protocol over their own transport. Internals (header writers, mask keys, caches) are
// not exported.
export { CloseCode, type CloseReason, describeCloseCode, isValidWireCloseCode } from './close-codes.js';
export { buildClosePayload, parseClosePayload } from './close-frame.js';
export { HandshakeError, type HandshakeResponse, InvalidStateError, WebSocketError } from './errors.js';
export { type ExtensionOffer, type ExtensionParam, formatExtensions, parseExtensions } from './extensions.js';
export { type DataOpcode, type Frame, isControlOpcode, Opcode, Rsv } from './frame.js';
export { type FrameHeader, FrameParser, type FrameParserOptions } from './frame-parser.js';
export { encodeFrame } from './frame-writer.js';
export {
  buildAcceptResponse,
  buildRejectionResponse,
  buildRequestHeaders,
  computeAccept,
  generateKey,
  type RequestHead,
  selectSubprotocol,
  type ValidatedRequest,
  validateRequest,
  validateResponse,
} from './handshake.js';
export { MessageAssembler } from './message-assembler.js';
export {
  acceptResponse,
  buildOffers,
  type DeflateParams,
  negotiate,
  type PerMessageDeflateOptions,
} from './permessage-deflate.js';
export {
  END_OF_STREAM,
  type FrameHooks,
  type Inflater,
  Protocol,
  type ProtocolEvent,
  type ProtocolOptions,
  type ProtocolSendOptions,
  ReadyState,
  type Side,
} from './protocol.js';
export { isValidUtf8, Utf8Validator } from './utf8.js';
