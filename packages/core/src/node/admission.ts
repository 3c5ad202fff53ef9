import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket } from './connection.js';
import type { ServerOptions } from './server-types.js';

/** Defaults of the server-only limits (SECURITY.md explains the choices). */
export const SERVER_DEFAULTS = {
  maxConnections: Number.POSITIVE_INFINITY,
  maxPendingHandshakes: 1024,
  maxConnectionsPerIp: Number.POSITIVE_INFINITY,
  retryAfter: 5,
} as const;

/** The key a remote address is counted under: IPv4-mapped IPv6 as IPv4, lower case. */
export function addressKey(address: string | undefined): string | undefined {
  if (address === undefined || address === '') return undefined;
  const lower = address.toLowerCase();
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(lower);
  return mapped?.[1] ?? lower;
}

function limitOption(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0) {
    throw new RangeError(`${name} must be a non-negative number (got ${String(value)})`);
  }
  return value;
}

/**
 * The server's capacity: open connections, handshakes in progress and connections per
 * remote address. A request over a limit is answered 503 before any WebSocket state
 * exists for it.
 */
export class Admission {
  /** The Retry-After value of the 503 answers. */
  readonly retryAfter: string;
  private readonly maxConnections: number;
  private readonly maxPendingHandshakes: number;
  private readonly maxConnectionsPerIp: number;
  private pending = 0;
  /** Open connections plus pending handshakes, per remote address (only with a per-IP limit). */
  private readonly perAddress = new Map<string, number>();
  private readonly addressOf = new Map<WebSocket, string>();

  constructor(options: ServerOptions) {
    this.maxConnections = limitOption(
      'maxConnections',
      options.maxConnections,
      SERVER_DEFAULTS.maxConnections,
    );
    this.maxPendingHandshakes = limitOption(
      'maxPendingHandshakes',
      options.maxPendingHandshakes,
      SERVER_DEFAULTS.maxPendingHandshakes,
    );
    this.maxConnectionsPerIp = limitOption(
      'maxConnectionsPerIp',
      options.maxConnectionsPerIp,
      SERVER_DEFAULTS.maxConnectionsPerIp,
    );
    this.retryAfter = String(
      Math.ceil(limitOption('retryAfter', options.retryAfter, SERVER_DEFAULTS.retryAfter)),
    );
  }

  /** The address a request is counted under (undefined without a per-IP limit). */
  addressFor(req: { socket?: { remoteAddress?: string | undefined } }, socket: Duplex): string | undefined {
    if (this.maxConnectionsPerIp === Number.POSITIVE_INFINITY) return undefined;
    return addressKey(req.socket?.remoteAddress ?? (socket as Partial<Socket>).remoteAddress);
  }

  /** Why one more upgrade must wait (the body of the 503), or undefined. */
  busy(openConnections: number, address: string | undefined): string | undefined {
    if (openConnections + this.pending >= this.maxConnections) return 'Too many connections';
    if (this.pending >= this.maxPendingHandshakes) return 'Too many handshakes in progress';
    if (address !== undefined && (this.perAddress.get(address) ?? 0) >= this.maxConnectionsPerIp) {
      return 'Too many connections from this address';
    }
    return undefined;
  }

  /** Holds a pending-handshake slot (and the address's count) for one upgrade. */
  hold(socket: Duplex, address: string | undefined): AdmissionTicket {
    return new AdmissionTicket(this, socket, address);
  }

  /** A connection closed: its address's count goes down. */
  connectionClosed(ws: WebSocket): void {
    const address = this.addressOf.get(ws);
    if (address === undefined) return;
    this.addressOf.delete(ws);
    this.count(address, -1);
  }

  /** @internal */
  countPending(delta: number): void {
    this.pending += delta;
  }

  /** @internal */
  count(address: string, delta: number): void {
    const n = (this.perAddress.get(address) ?? 0) + delta;
    if (n <= 0) this.perAddress.delete(address);
    else this.perAddress.set(address, n);
  }

  /** @internal */
  own(ws: WebSocket, address: string): void {
    this.addressOf.set(ws, address);
  }
}

/**
 * One upgrade's hold on the server's capacity. The pending slot is held while
 * acceptConnection runs, and freed when the socket goes away (handshakeTimeout) even if
 * acceptConnection never settles; the address's count is held until the connection
 * closes, or the upgrade fails.
 */
export class AdmissionTicket {
  private pending = true;
  private addressHeld: boolean;

  constructor(
    private readonly admission: Admission,
    private readonly socket: Duplex,
    private readonly address: string | undefined,
  ) {
    admission.countPending(1);
    this.addressHeld = address !== undefined;
    if (address !== undefined) admission.count(address, 1);
    socket.once('close', this.onClose);
  }

  private readonly onClose = (): void => {
    this.endPending();
    this.dropAddress();
  };

  /** The decision is made: the handshake no longer counts as pending. */
  endPending(): void {
    if (!this.pending) return;
    this.pending = false;
    this.admission.countPending(-1);
  }

  /** The connection exists: its close releases the address from now on. */
  adopt(ws: WebSocket): void {
    this.socket.off('close', this.onClose);
    this.endPending();
    if (!this.addressHeld || this.address === undefined) return;
    this.addressHeld = false;
    // A connection already closed (its socket died during construction) was counted out.
    if (ws.readyState === WebSocket.CLOSED) this.admission.count(this.address, -1);
    else this.admission.own(ws, this.address);
  }

  /** The upgrade is over (refused, or adopted): nothing is held any more. */
  release(): void {
    this.socket.off('close', this.onClose);
    this.endPending();
    this.dropAddress();
  }

  private dropAddress(): void {
    if (this.addressHeld && this.address !== undefined) this.admission.count(this.address, -1);
    this.addressHeld = false;
  }
}
