// A third site for checking the browser's own cookie settings, with nothing
// of hubgate in it: https://127.0.0.2:<port> (loopback; another site than
// both 127.0.0.1 and localhost). Framed by the LMS page, `/set` sets one
// unpartitioned `SameSite=None; Secure` cookie and one `Partitioned` one;
// with third-party cookies blocked only the partitioned one is kept.
import https from 'node:https';

export async function startThirdPartySite({ tls }) {
  const server = https.createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    const url = new URL(req.url, 'https://127.0.0.2');
    if (url.pathname === '/set') {
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-store',
        'set-cookie': ['probe_unpartitioned=1; Secure; SameSite=None; Path=/', 'probe_partitioned=1; Secure; SameSite=None; Path=/; Partitioned'],
      });
      res.end('<!doctype html><title>third-party probe</title>set');
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found\n');
  });
  const port = await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.2', () => resolve(server.address().port));
  });
  return {
    url: `https://127.0.0.2:${port}`,
    close: () =>
      new Promise((r) => {
        server.close(() => r());
        server.closeAllConnections?.();
      }),
  };
}
