// A local certificate for the real-browser suite, made with the `openssl` CLI
// into tests/browser/.work/tls/ (git-ignored): one self-signed EC P-256 leaf
// for the sites of the suite, SAN `DNS:localhost, IP:127.0.0.1, IP:127.0.0.2`
// (127.0.0.2: a third site, used only to check the browser's cookie settings). The LMS
// (Node https) and the worker (Miniflare httpsKeyPath/httpsCertPath) serve it;
// Chromium accepts it by its SPKI pin (`--ignore-certificate-errors-spki-list`),
// so any other certificate error would still be an error; Node clients pass
// it as `ca`.
//
// Reused while it is valid for another day (the pin is recomputed from the
// file each run); regenerated otherwise. Several suites starting at once
// write to a temp name and rename, so no one reads half a file.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const BROWSER_WORK = path.resolve(here, '..', '.work');
const TLS_DIR = path.join(BROWSER_WORK, 'tls');

function openssl(args, input) {
  try {
    return execFileSync('openssl', args, { input, stdio: ['pipe', 'pipe', 'pipe'], timeout: 20_000 });
  } catch (err) {
    if (err.code === 'ENOENT') throw new Error('the `openssl` command is missing: run `apt-get install -y openssl`');
    throw new Error(`openssl ${args.join(' ')} failed: ${err.stderr?.toString() ?? err.message}`);
  }
}

function usable(certPem) {
  try {
    const x = new crypto.X509Certificate(certPem);
    const validTo = Date.parse(x.validTo);
    const san = x.subjectAltName ?? '';
    return validTo - Date.now() > 24 * 3600 * 1000 && /DNS:localhost/.test(san) && /IP Address:127\.0\.0\.1\b/.test(san) && /IP Address:127\.0\.0\.2\b/.test(san);
  } catch {
    return false;
  }
}

/**
 * @returns {{ keyPath:string, certPath:string, key:string, cert:string, spki:string }}
 *   spki: base64 SHA-256 of the certificate's SubjectPublicKeyInfo (Chromium's pin format)
 */
export function localCertificate() {
  fs.mkdirSync(TLS_DIR, { recursive: true });
  const keyPath = path.join(TLS_DIR, 'key.pem');
  const certPath = path.join(TLS_DIR, 'cert.pem');
  if (!(fs.existsSync(keyPath) && fs.existsSync(certPath) && usable(fs.readFileSync(certPath, 'utf8')))) {
    const tmp = fs.mkdtempSync(path.join(TLS_DIR, 'new-'));
    const k = path.join(tmp, 'key.pem');
    const c = path.join(tmp, 'cert.pem');
    openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', path.join(tmp, 'ec.pem')]);
    openssl(['pkcs8', '-topk8', '-nocrypt', '-in', path.join(tmp, 'ec.pem'), '-out', k]);
    openssl([
      'req', '-x509', '-new', '-key', k, '-out', c, '-days', '30', '-sha256',
      '-subj', '/CN=hubgate browser tests',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:127.0.0.2',
      '-addext', 'basicConstraints=critical,CA:FALSE',
      '-addext', 'keyUsage=critical,digitalSignature',
      '-addext', 'extendedKeyUsage=serverAuth',
    ]);
    fs.renameSync(k, keyPath);
    fs.renameSync(c, certPath);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const key = fs.readFileSync(keyPath, 'utf8');
  const cert = fs.readFileSync(certPath, 'utf8');
  // SPKI pin with the openssl CLI, checked against Node's own computation.
  const pubDer = openssl(['pkey', '-pubin', '-outform', 'DER'], openssl(['x509', '-pubkey', '-noout', '-in', certPath]));
  const spki = crypto.createHash('sha256').update(pubDer).digest('base64');
  const nodeDer = new crypto.X509Certificate(cert).publicKey.export({ type: 'spki', format: 'der' });
  if (crypto.createHash('sha256').update(nodeDer).digest('base64') !== spki) throw new Error('SPKI pin mismatch between openssl and node');
  return { keyPath, certPath, key, cert, spki };
}
