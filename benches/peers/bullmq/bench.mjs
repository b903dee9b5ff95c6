// BullMQ peer for the webhook-delivery benchmark: enqueue N jobs, deliver each
// as an HTTP POST from in-process workers, report throughput as one JSON line.
//
// node bench.mjs --socket /path/redis.sock --url http://127.0.0.1:PORT/hook \
//   [--jobs 2000] [--concurrency 64] [--workers 1] [--prefix bq] [--timeout 120]
import { parseArgs } from 'node:util';
import { Queue, Worker } from 'bullmq';

const { values: args } = parseArgs({
  options: {
    socket: { type: 'string' },
    url: { type: 'string' },
    jobs: { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '64' },
    workers: { type: 'string', default: '1' },
    prefix: { type: 'string', default: 'bq' },
    timeout: { type: 'string', default: '120' }, // seconds
  },
});

function fail(msg) {
  process.stderr.write(`bench-bullmq: ${msg}\n`);
  process.exit(1);
}

if (!args.socket || !args.url) fail('--socket and --url are required');
const jobs = Number(args.jobs);
const concurrency = Number(args.concurrency);
const workerCount = Number(args.workers);
const timeoutSec = Number(args.timeout);
for (const [k, v] of Object.entries({ jobs, concurrency, workers: workerCount, timeout: timeoutSec })) {
  if (!Number.isInteger(v) || v < 1) fail(`--${k} must be a positive integer`);
}

// maxRetriesPerRequest: null is required by BullMQ for its blocking connections.
// Passing options (not a shared client) lets each Queue/Worker own and close its connections.
const connection = { path: args.socket, maxRetriesPerRequest: null };
const queueName = 'deliveries';
const queue = new Queue(queueName, { connection, prefix: args.prefix });
queue.on('error', (err) => fail(`queue error: ${err.message}`));

// Start from an empty queue so leftovers from earlier runs don't skew the count.
await queue.obliterate({ force: true });

const jobOpts = {
  attempts: 5,
  backoff: { type: 'exponential', delay: 1000 },
  removeOnComplete: true,
};
// Chunked so very large --jobs values don't build one giant pipeline.
for (let start = 0; start < jobs; start += 1000) {
  const batch = [];
  for (let i = start; i < Math.min(start + 1000, jobs); i++) {
    batch.push({ name: 'delivery', data: { n: i, body: { event: 'bench', n: i } }, opts: jobOpts });
  }
  await queue.addBulk(batch);
}

async function deliver(job) {
  const res = await fetch(args.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'webhook-id': String(job.id) },
    body: JSON.stringify(job.data.body),
    signal: AbortSignal.timeout(10_000), // a hung receiver becomes a retry, not a stuck slot
  });
  await res.arrayBuffer(); // drain so the keep-alive socket returns to the pool
  if (!res.ok) throw new Error(`HTTP ${res.status}`); // non-2xx => BullMQ retries with backoff
}

let completed = 0;
let dead = 0; // jobs that exhausted all attempts
let lastError = '';
let finish;
const done = new Promise((resolve) => (finish = resolve));
const settle = () => completed + dead === jobs && finish();

// autorun: false so connection setup happens before the clock starts.
const workers = [];
for (let w = 0; w < workerCount; w++) {
  const worker = new Worker(queueName, deliver, {
    connection,
    prefix: args.prefix,
    concurrency,
    autorun: false,
  });
  worker.on('completed', () => { completed++; settle(); });
  worker.on('failed', (job, err) => {
    // fetch reports "fetch failed" and hides the reason (ECONNREFUSED, ...) in cause
    lastError = err.cause ? `${err.message}: ${err.cause.code ?? err.cause.message}` : err.message;
    if (job && job.attemptsMade >= jobOpts.attempts) { dead++; settle(); }
  });
  worker.on('error', (err) => fail(`worker error: ${err.message}`));
  workers.push(worker);
}
await Promise.all(workers.map((w) => w.waitUntilReady()));

const timer = setTimeout(
  () => fail(`timeout after ${timeoutSec}s: ${completed}/${jobs} completed, ${dead} failed (last error: ${lastError || 'none'})`),
  timeoutSec * 1000,
);
const t0 = process.hrtime.bigint();
for (const w of workers) w.run().catch((err) => fail(`worker run failed: ${err.message}`));
await done;
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
clearTimeout(timer);

await Promise.all(workers.map((w) => w.close()));
await queue.close();

if (dead > 0) fail(`${dead}/${jobs} jobs failed permanently (last error: ${lastError})`);
process.stdout.write(JSON.stringify({
  system: 'bullmq',
  jobs,
  workers: workerCount,
  concurrency,
  seconds: Number(seconds.toFixed(3)),
  per_second: Number((jobs / seconds).toFixed(1)),
}) + '\n');
process.exit(0); // don't wait on idle keep-alive sockets
