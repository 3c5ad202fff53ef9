import { type IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

/**
 * For framework adapters: a real `ServerResponse` writing onto the socket of an upgrade
 * request, so that the framework's middleware can refuse the upgrade with an ordinary
 * HTTP answer (`res.status(401).end()`, a 404, an error page). Once the answer is sent
 * the socket is closed. `release()` detaches the response before the socket is handed
 * to the WebSocket handshake, after which nothing may be written through it.
 */
export function createUpgradeResponse(
  req: IncomingMessage,
  socket: Duplex,
): {
  res: ServerResponse;
  release: () => void;
} {
  const res = new ServerResponse(req);
  res.shouldKeepAlive = false; // the answer ends this connection: "Connection: close"
  res.assignSocket(socket as Socket);
  // Node leaves an upgrade socket without an 'error' listener: a reset while the
  // framework writes its answer must not crash the process.
  const onError = (): void => {};
  socket.on('error', onError);
  let released = false;
  const onFinish = () => {
    if (released) return;
    released = true;
    res.detachSocket(socket as Socket);
    socket.end();
    setTimeout(() => socket.destroy(), 1000).unref();
  };
  res.once('finish', onFinish);
  return {
    res,
    release: () => {
      if (released) return;
      released = true;
      res.off('finish', onFinish);
      socket.off('error', onError);
      res.detachSocket(socket as Socket);
    },
  };
}
