// A minimal chat on Express: `node examples/express-chat/server.js`, then open
// http://127.0.0.1:3000 in two browser tabs.
import { fileURLToPath } from 'node:url';
import { expressWs } from '@wskit/express';
import express from 'express';

const { app, wss } = expressWs(express(), null, {
  // The default acceptConnection already refuses pages of other origins (same-origin only).
  maxMessageSize: 16 * 1024,
});

const page = fileURLToPath(new URL('./index.html', import.meta.url));
app.get('/', (_req, res) => res.sendFile(page));

// Ordinary Express middleware runs on the upgrade request: a refusal here is the HTTP
// answer the browser's WebSocket gets instead of the handshake.
function requireName(req, res, next) {
  const name = String(req.query.name ?? '').trim();
  if (name === '' || name.length > 32) {
    res.status(400).send('Pick a name of 1 to 32 characters.');
    return;
  }
  req.user = { name };
  next();
}

const say = (event) => wss.publish('chat', JSON.stringify({ ...event, at: Date.now() }));

app.ws('/chat', requireName, async (ws, req) => {
  const { name } = req.user;
  ws.subscribe('chat');
  say({ type: 'system', text: `${name} joined (${wss.clients.size} online)` });
  for await (const msg of ws) {
    const text = msg.text().trim();
    if (text !== '') say({ type: 'message', name, text });
  }
  say({ type: 'system', text: `${name} left` });
});

const port = Number(process.env.PORT ?? 3000);
const server = app.listen(port, '127.0.0.1', () => console.log(`express chat on http://127.0.0.1:${port}`));

// Shutdown: server.close() stops accepting and sends 1001 (going away) to every
// WebSocket; wss.close() resolves once they have all closed.
async function shutdown() {
  server.close();
  await wss.close();
  process.exit(0);
}
process.once('SIGINT', shutdown);
process.once('SIGTERM', shutdown);
