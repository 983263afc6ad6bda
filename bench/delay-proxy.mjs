// A small TCP delay proxy for the benchmarks: listens on 127.0.0.1, forwards
// every connection to a target on loopback, and delays each chunk in each
// direction by `delayMs` (a one-way latency; a request/response exchange then
// costs at least 2 x delayMs). Order is kept: each direction is one FIFO queue,
// and a chunk never leaves before the one ahead of it.
// The delay can be changed at run time (`setDelay`), so one topology serves
// cells with and without latency. A half-close (FIN) is forwarded after the
// chunks before it; `close()` stops listening and destroys every live
// connection.
//
// With `handshake: true` the first client->target chunk of a connection
// also waits one round trip (2 x delayMs), as a TCP handshake over a real link
// would before the client could send anything. Off by default.
//
//   const p = await startDelayProxy({ target: { host: '127.0.0.1', port: 8000 }, delayMs: 20, name: 'browser->front' });
//   p.url        // http://127.0.0.1:<port>
//   p.setDelay(0)
//   await p.close()
//
// CLI (for trying it by hand):  node bench/delay-proxy.mjs <listenPort> <targetPort> <delayMs>
import net from 'node:net';
import { fileURLToPath } from 'node:url';

const LOOPBACK = /^127\.\d+\.\d+\.\d+$/;

/**
 * @param {object} o
 * @param {{host?: string, port: number}} o.target where to forward (loopback only)
 * @param {number} [o.delayMs=0] one-way delay per chunk, each direction
 * @param {number} [o.port=0] listening port (0: any free one)
 * @param {string} [o.name] a label for errors
 * @param {boolean} [o.handshake=false] delay the first client chunk by one extra round trip
 */
export async function startDelayProxy({ target, delayMs = 0, port = 0, name = 'delay-proxy', handshake = false }) {
  const host = target.host ?? '127.0.0.1';
  if (!LOOPBACK.test(host)) throw new Error(`${name}: target must be on loopback, got ${host}`);
  if (!Number.isInteger(target.port) || target.port <= 0) throw new Error(`${name}: bad target port ${target.port}`);
  let delay = checkDelay(delayMs);
  let useHandshake = Boolean(handshake);
  const sockets = new Set();
  const stats = { connections: 0, bytesUp: 0, bytesDown: 0 };

  /**
   * Forward `from` → `to`, each chunk `delay` ms (plus `firstExtra()` for the
   * first one) after it arrived. One FIFO queue per direction drained by one
   * timer, so chunks never overtake each other, whatever the delays (a
   * handshake's extra wait on the first chunk, or a delay changed while a
   * kept-alive connection is open): a chunk leaves at max(its due time, the
   * previous chunk's).
   */
  function pipeDelayed(from, to, count, firstExtra = () => 0) {
    let first = true;
    let ended = false; // `from` sent FIN: end `to` once the queue is out
    let paused = false;
    let timer = null;
    const queue = []; // { due, chunk }
    const endTo = () => {
      if (!to.destroyed) to.end();
    };
    const drain = () => {
      timer = null;
      const now = performance.now();
      while (queue.length && queue[0].due <= now + 0.5) {
        const { chunk } = queue.shift();
        if (!to.destroyed) to.write(chunk);
      }
      if (paused && queue.length < 16) {
        paused = false;
        from.resume();
      }
      if (queue.length) timer = setTimeout(drain, Math.max(0, queue[0].due - performance.now()));
      else if (ended) endTo();
    };
    from.on('data', (chunk) => {
      stats[count] += chunk.length;
      const wait = delay + (first ? firstExtra() : 0);
      first = false;
      const prev = queue.length ? queue[queue.length - 1].due : 0;
      queue.push({ due: Math.max(performance.now() + wait, prev), chunk });
      // crude back-pressure: stop reading while many chunks are in flight
      if (queue.length > 64 && !paused) {
        paused = true;
        from.pause();
      }
      if (!timer) timer = setTimeout(drain, Math.max(0, queue[0].due - performance.now()));
    });
    from.on('end', () => {
      ended = true;
      if (queue.length) return; // drain ends it after the last chunk
      if (delay > 0) setTimeout(endTo, delay);
      else setImmediate(endTo);
    });
  }

  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    stats.connections += 1;
    const upstream = net.connect({ host, port: target.port, allowHalfOpen: true });
    sockets.add(client);
    sockets.add(upstream);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const done = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', done);
    upstream.on('error', done);
    // A side that is gone entirely (reset, destroyed) takes the other one
    // with it once the chunks in flight had their time; a FIN alone is
    // forwarded by pipeDelayed (half-open is allowed on both sockets).
    client.on('close', () => {
      sockets.delete(client);
      setTimeout(() => upstream.end(), 2 * delay + 1).unref();
    });
    upstream.on('close', () => {
      sockets.delete(upstream);
      setTimeout(() => client.end(), 2 * delay + 1).unref();
    });
    pipeDelayed(client, upstream, 'bytesUp', () => (useHandshake ? 2 * delay : 0));
    pipeDelayed(upstream, client, 'bytesDown');
  });
  server.on('error', (err) => {
    process.stderr.write(`[${name}] ${err.message}\n`);
  });
  const bound = await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve(server.address().port);
    });
  });

  return {
    name,
    port: bound,
    url: `http://127.0.0.1:${bound}`,
    target: { host, port: target.port },
    stats,
    get delayMs() {
      return delay;
    },
    setDelay(ms) {
      delay = checkDelay(ms);
    },
    setHandshake(on) {
      useHandshake = Boolean(on);
    },
    close() {
      return new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        sockets.clear();
        server.close(() => resolve());
      });
    },
  };
}

function checkDelay(ms) {
  const n = Number(ms);
  if (!Number.isFinite(n) || n < 0 || n > 10_000) throw new RangeError(`delay must be 0..10000 ms, got ${ms}`);
  return n;
}

// CLI
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [listenPort, targetPort, delayMs] = process.argv.slice(2).map(Number);
  if (!targetPort) {
    console.error('usage: node bench/delay-proxy.mjs <listenPort> <targetPort> <delayMs>');
    process.exit(2);
  }
  const p = await startDelayProxy({ port: listenPort || 0, target: { port: targetPort }, delayMs: delayMs || 0 });
  console.log(`delay proxy ${p.url} -> 127.0.0.1:${targetPort}, ${p.delayMs} ms each way; Ctrl-C stops it`);
  const stop = () => p.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
