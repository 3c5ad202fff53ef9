// A minimal chat on Koa: open http://127.0.0.1:3001 in two tabs.
import { readFileSync } from 'node:fs';
import Router from '@koa/router';
import { koaWs, websocket } from '@wskit/koa';
import Koa from 'koa';

const page = readFileSync(new URL('./index.html', import.meta.url), 'utf8');
const app = koaWs(new Koa());
const router = new Router();

router.get('/', (ctx) => {
  ctx.type = 'html';
  ctx.body = page;
});
router.get(
  '/chat',
  websocket(async (ws, ctx) => {
    const name = ctx.query.name || 'anon';
    ws.subscribe('room');
    app.ws.wss.publish('room', `${name} joined`);
    for await (const msg of ws) app.ws.wss.publish('room', `${name}: ${msg.text()}`);
    app.ws.wss.publish('room', `${name} left`);
  }),
);
app.use(router.routes());

const port = Number(process.env.PORT ?? 3001);
app.listen(port, '127.0.0.1', () => console.log(`koa chat on http://127.0.0.1:${port}`));
