// A third site for checking the browser's own cookie settings, with nothing
// of hubgate in it: https://127.0.0.2:<port> (loopback; another site than
// both 127.0.0.1 and localhost). Framed by the LMS page, `/set` sets one
// unpartitioned `SameSite=None; Secure` cookie and one `Partitioned` one;
// with third-party cookies blocked only the partitioned one is kept.
//
// `/relay`, framed by the LMS page (`aside=`), is a bystander on another
// site for the Platform Storage tests: it reports to its parent every
// message it receives (`{aside:'received', origin, data}`), and when its
// parent asks (`{relay: message, to: frameName}`) it posts `message` to that
// sibling frame with targetOrigin `*` (`{aside:'relayed', …}` reported back),
// so the tool frame gets a well-formed reply from an origin other than the LMS.
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
    if (url.pathname === '/relay') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(`<!doctype html><title>third-party frame</title><script>
window.addEventListener('message', function (ev) {
  var d = ev.data;
  if (ev.source === window.parent && d && typeof d === 'object' && d.relay) {
    var w = null;
    try { w = window.parent.frames[d.to]; } catch (e) { /* none */ }
    if (w) w.postMessage(d.relay, '*');
    window.parent.postMessage({ aside: w ? 'relayed' : 'relay-failed', subject: d.relay.subject, message_id: d.relay.message_id }, '*');
    return;
  }
  var data;
  try { data = JSON.parse(JSON.stringify(d)); } catch (e) { data = String(d); }
  window.parent.postMessage({ aside: 'received', origin: ev.origin, subject: d && d.subject, message_id: d && d.message_id, data: data }, '*');
});
</script>relay`);
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
