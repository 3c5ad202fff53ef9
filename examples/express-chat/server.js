// The wskit demo: chat rooms on Express. `npm run demo` at the root of the clone, then
// open http://127.0.0.1:3000 in two tabs. Environment:
//   PORT            port to listen on (default 3000; 0 picks a free one)
//   HOST            address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)
//   PING_INTERVAL   ms between the server's keepalive pings, which measure the RTT (default 5000)
//   ALLOWED_ORIGINS comma-separated origins whose pages may connect besides this server's own
//
// What it shows: rooms as routes (/rooms/:name), pub/sub topics (ws.subscribe +
// wss.publish), JSON messages validated on the server (a bad one is answered with an
// error message, the connection stays), an origin guard, and per connection the facts
// the page displays: subprotocol, permessage-deflate and its ratio, RTT, traffic.
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { expressWs, originGuard } from '@wskit/express';
import express from 'express';
import { z } from 'zod';

const HOST = process.env.HOST ?? '127.0.0.1';
const PORT = Number(process.env.PORT ?? 3000);
const PING_INTERVAL = Number(process.env.PING_INTERVAL ?? 5000);
const ALLOWED_ORIGINS = (process.env.ALLOWED_ORIGINS ?? '')
  .split(',')
  .map((o) => o.trim())
  .filter((o) => o !== '');
const PROTOCOL = 'chat.v1';
const HISTORY = 50;

/** Pages of this server's own host, and ALLOWED_ORIGINS. */
function originAllowed(origin, req) {
  if (ALLOWED_ORIGINS.includes(origin)) return true;
  try {
    return new URL(origin).host === req.host;
  } catch {
    return false;
  }
}

const app = express();
const server = createServer(app);
const { wss } = expressWs(app, server, {
  protocols: [PROTOCOL],
  origins: originAllowed,
  // threshold 0: every message sent to one connection is compressed (published ones are
  // encoded once for all subscribers, uncompressed).
  perMessageDeflate: { threshold: 0 },
  pingInterval: PING_INTERVAL,
  maxMessageSize: 16 * 1024,
});

// ---- validation ------------------------------------------------------------------------

const RoomName = z.string().regex(/^[a-z0-9][a-z0-9-]{0,31}$/, 'a room name is 1-32 of a-z, 0-9 and -');
const UserName = z.string().trim().min(1, 'pick a name').max(32, 'a name has at most 32 characters');
const ClientMessage = z.discriminatedUnion('type', [
  z.object({ type: z.literal('say'), text: z.string().trim().min(1).max(500) }),
]);

// ---- pages -----------------------------------------------------------------------------

const page = fileURLToPath(new URL('./index.html', import.meta.url));
app.get('/', (_req, res) => res.redirect('/rooms/lobby'));
app.get('/rooms/:room', (req, res) => {
  if (!RoomName.safeParse(req.params.room).success) {
    res.status(404).type('text').send('No such room: names are 1-32 of a-z, 0-9 and -.');
    return;
  }
  res.sendFile(page);
});

// ---- admission: the same checks for the upgrade and for its HTTP explanation ------------

// A page of another site must not act for its visitors here (cross-site WebSocket hijacking).
const sameSiteOrAllowed = originGuard(originAllowed, {
  message: 'Pages of other sites may not join this chat (origin not allowed).',
});

function admit(req, res, next) {
  const room = RoomName.safeParse(req.params.room);
  const name = UserName.safeParse(String(req.query.name ?? ''));
  if (!room.success || !name.success) {
    res
      .status(400)
      .type('text')
      .send(`Cannot join: ${(room.success ? name : room).error.issues[0].message}.`);
    return;
  }
  req.chat = { room: room.data, name: name.data };
  next();
}

// A browser can't read the body of a refused handshake (its WebSocket only reports 1006),
// so the page asks this plain-HTTP twin of the WebSocket route why: the same middleware
// runs, and the refusal (status and text) is what the upgrade got. Readable from any
// origin (CORS), because the refused page is the one that needs the reason.
app.get(
  '/ws/rooms/:room',
  (_req, res, next) => {
    res.set('Access-Control-Allow-Origin', '*');
    next();
  },
  sameSiteOrAllowed,
  admit,
  (_req, res) => res.status(204).end(),
);

// ---- rooms -----------------------------------------------------------------------------

/** room -> Map<ws, member> */
const rooms = new Map();
/** room -> last messages */
const history = new Map();

const topic = (room) => `room:${room}`;
const byteLength = (text) => Buffer.byteLength(text);

/** Publishes to everyone in the room (one encoding for all), and counts it for each. */
function publish(room, event) {
  const text = JSON.stringify({ ...event, room, at: Date.now() });
  for (const member of rooms.get(room)?.values() ?? []) member.count(text, true);
  wss.publish(topic(room), text);
}

function presence(room) {
  const users = [...(rooms.get(room)?.values() ?? [])].map((m) => m.name).sort();
  publish(room, { type: 'presence', users });
}

app.ws('/ws/rooms/:room', sameSiteOrAllowed, admit, async (ws, req) => {
  const { room, name } = req.chat;
  // Message bytes vs. bytes of data-frame payloads on the wire (after compression; frame
  // headers and control frames not counted): the compression ratio, per direction.
  const stats = { messagesIn: 0, bytesIn: 0, wireIn: 0, messagesOut: 0, bytesOut: 0, wireOut: 0 };
  const isData = (frame) => frame.opcode <= 0x2; // continuation, text, binary
  ws.use({
    name: 'demo-stats',
    inbound(frame) {
      if (isData(frame)) stats.wireIn += frame.payload.length; // still compressed here
      return frame;
    },
    outbound(frame) {
      if (isData(frame)) stats.wireOut += frame.payload.length; // already compressed here
      return frame;
    },
  });
  const member = {
    name,
    count(text, published = false) {
      stats.messagesOut++;
      stats.bytesOut += byteLength(text);
      // Published frames are encoded once for all subscribers (uncompressed) and don't
      // pass through the connection's stages.
      if (published) stats.wireOut += byteLength(text);
    },
  };
  const send = (event) => {
    const text = JSON.stringify(event);
    member.count(text);
    return ws.send(text).catch(() => {}); // closing: nothing to do
  };
  // On each keepalive Pong: the RTT, and payload vs. wire bytes for the compression ratio.
  const sendStats = () =>
    send({
      type: 'stats',
      rtt: ws.rtt,
      pingInterval: PING_INTERVAL,
      in: { messages: stats.messagesIn, bytes: stats.bytesIn, wire: stats.wireIn },
      out: { messages: stats.messagesOut, bytes: stats.bytesOut, wire: stats.wireOut },
    });
  ws.on('pong', () => setImmediate(sendStats)); // ws.rtt is updated right after the event

  if (!rooms.has(room)) rooms.set(room, new Map());
  rooms.get(room).set(ws, member);
  ws.subscribe(topic(room));
  await send({
    type: 'welcome',
    you: name,
    room,
    protocol: ws.protocol,
    extensions: ws.extensions,
    pingInterval: PING_INTERVAL,
    history: history.get(room) ?? [],
  });
  presence(room);

  try {
    for await (const msg of ws) {
      stats.messagesIn++;
      stats.bytesIn += msg.size;
      let parsed;
      try {
        parsed = ClientMessage.safeParse(msg.json());
      } catch {
        parsed = { success: false, error: { issues: [{ message: 'not JSON', path: [] }] } };
      }
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        const where = issue.path.length > 0 ? ` (${issue.path.join('.')})` : '';
        await send({ type: 'error', error: `invalid message: ${issue.message}${where}` });
        continue;
      }
      const entry = { type: 'message', name, text: parsed.data.text };
      const past = history.get(room) ?? [];
      past.push({ ...entry, at: Date.now() });
      history.set(room, past.slice(-HISTORY));
      publish(room, entry);
    }
  } finally {
    rooms.get(room)?.delete(ws);
    if (rooms.get(room)?.size === 0) rooms.delete(room);
    else presence(room);
  }
});

// ---- start and stop --------------------------------------------------------------------

server.on('error', (err) => {
  if (err.code === 'EADDRINUSE') {
    console.error(
      `express-chat: port ${PORT} on ${HOST} is already in use (another demo still running?).\n` +
        `Stop it, or pick another port: PORT=3001 npm run demo`,
    );
  } else if (err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND') {
    console.error(`express-chat: cannot listen on ${HOST}: not an address of this machine (set HOST).`);
  } else {
    console.error(`express-chat: cannot listen on ${HOST}:${PORT}: ${err.message}`);
  }
  process.exit(1);
});

server.listen(PORT, HOST, () => {
  const { port } = server.address();
  const host = HOST.includes(':') ? `[${HOST}]` : HOST === '0.0.0.0' ? '127.0.0.1' : HOST;
  console.log(`express chat on http://${host}:${port}/rooms/lobby (Ctrl-C to stop)`);
});

// Shutdown: wss.close() sends 1001 (going away) with a reason to every WebSocket and
// resolves once they have all closed; server.close() then stops accepting. The pages
// reconnect on their own.
async function shutdown() {
  await wss.close(1001, 'server restarting');
  server.close();
  process.exit(0);
}
process.once('SIGINT', shutdown);
process.once('SIGTERM', shutdown);
