// Minimal webhook sink for testing bench.mjs: 204 to every POST, counts them.
// First stdout line is the hook URL; GET /count returns the counters as JSON.
//
// node receiver.mjs [--port 0] [--fail-every K]   (K>0: every Kth POST gets 503, to exercise retries)
import http from 'node:http';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '0' }, // 0 = pick a free port
    'fail-every': { type: 'string', default: '0' },
  },
});
const failEvery = Number(args['fail-every']);

let posts = 0;
const ids = new Set(); // distinct webhook-id values, to spot lost or duplicate deliveries

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/count') {
    res.writeHead(200, { 'content-type': 'application/json' });
    return res.end(JSON.stringify({ posts, distinct_ids: ids.size }));
  }
  if (req.method !== 'POST') return res.writeHead(405).end();
  req.resume(); // body content is irrelevant; just consume it
  req.on('end', () => {
    posts++;
    if (failEvery > 0 && posts % failEvery === 0) return res.writeHead(503).end();
    ids.add(req.headers['webhook-id']);
    res.writeHead(204).end();
  });
});
server.keepAliveTimeout = 60_000; // keep client pools warm across a whole run

server.listen(Number(args.port), '127.0.0.1', () => {
  console.log(`http://127.0.0.1:${server.address().port}/hook`);
});

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    process.stderr.write(`receiver: ${posts} POSTs, ${ids.size} distinct webhook-ids\n`);
    process.exit(0);
  });
}
