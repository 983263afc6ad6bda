// What a student or a user does in the browser, as functions over a
// launched browser (support/browser.mjs) and the stack (support/stack.mjs).
// Every wait is bounded; each returns what happened rather than asserting,
// so the tests can say precisely what went wrong.
import { pollUntil, frameNamed, evalIn, sleep } from './browser.mjs';

export const TOOL_FRAME = 'tool-frame';
export const PROBE_FRAME = 'hubgate-probe';

/** The hub username of an LTI user of the test LMS (USERNAME_NAMESPACE=platform: `<platform>:<email>`). */
export const ltiUsername = (s, user) => `${s.lms.name}:${user}@example.edu`;

/**
 * Open the LMS course page; for window=frame the page posts the login
 * initiation into its iframe at once.
 * @returns {Promise<{mark:number}>}
 */
export async function openCourse(b, s, opts) {
  const mark = b.rec.mark();
  await b.page.goto(s.lms.courseUrl(opts), { waitUntil: 'load', timeout: 20_000 });
  return { mark };
}

/**
 * Follow the tool frame until `done(frame)` holds, the frame's navigation
 * fails (net::ERR_…), the frame shows a browser error page, or `timeoutMs`.
 * @returns {Promise<{ok:boolean, reason?:string, frame:any, url:string}>}
 */
export async function waitForFrame(b, mark, done, { timeoutMs = 30_000, name = TOOL_FRAME, page = b.page } = {}) {
  let last = { ok: false, reason: `timed out after ${timeoutMs} ms`, frame: null, url: '' };
  const res = await pollUntil(
    async () => {
      const frame = frameNamed(page, name);
      if (!frame) return null;
      const url = frame.url();
      last = { ok: false, reason: `timed out after ${timeoutMs} ms (frame at ${url})`, frame, url };
      const failed = b.rec.since(mark).filter((e) => e.frame === name && e.nav && e.failure);
      if (failed.length) {
        const f = failed.at(-1);
        return { ok: false, reason: `the frame's navigation to ${f.url} failed with ${f.failure}`, frame, url };
      }
      if (url.startsWith('chrome-error://')) return { ok: false, reason: `the frame shows the browser's error page (${url}): the document was refused or failed to load`, frame, url };
      if (await done(frame)) return { ok: true, frame, url: frame.url() };
      return null;
    },
    { timeoutMs },
  );
  return res ?? last;
}

/** A predicate: the frame is at a path matching `re` on the tool origin and its document has loaded. */
export const atToolPath = (s, re) => async (frame) => {
  const u = new URL(frame.url());
  if (u.origin !== s.tool || !re.test(u.pathname)) return false;
  return (await evalIn(frame, () => document.readyState, null, 3000)) === 'complete';
};

/** The user a JupyterHub page rendered in `frame` shows (window.jhdata.user), and /hub/api/user asked with its XSRF token. */
export async function hubIdentity(frame) {
  return evalIn(
    frame,
    async () => {
      const jh = window.jhdata;
      if (!jh) return { page: null, api: null, title: document.title, text: (document.body?.innerText ?? '').slice(0, 200) };
      let api = null;
      try {
        const r = await fetch(`${jh.base_url}api/user`, { headers: { accept: 'application/json', 'x-xsrftoken': jh.xsrf_token } });
        const t = await r.text();
        let name = null;
        try {
          name = JSON.parse(t).name ?? null;
        } catch {
          /* not JSON */
        }
        api = { status: r.status, name, text: t.slice(0, 200) };
      } catch (err) {
        api = { status: 0, error: String(err) };
      }
      return { page: jh.user ?? null, api, title: document.title, url: location.href };
    },
    null,
    15_000,
  );
}

/**
 * Does this browser (in `page`'s cookie partition) hold a worker session?
 * A tool-origin document with no CSP (`/_hubgate/health`) is opened in a probe
 * iframe of `page` (so it uses the same partition as the tool frame), or in
 * `page` itself for a top-level page, and asks `/hub/api/user` for JSON: the
 * worker answers 401 "Not signed in" without a session; with one it proxies
 * to the hub.
 * @returns {Promise<{session:boolean, status:number, text:string}>}
 */
export async function workerSession(s, page, { inFrame = true } = {}) {
  let frame;
  if (inFrame) {
    await page.evaluate(
      ({ name, src }) => {
        document.querySelectorAll(`iframe[name="${name}"]`).forEach((f) => f.remove());
        const f = document.createElement('iframe');
        f.name = name;
        f.src = src;
        f.style.display = 'none';
        document.body.appendChild(f);
      },
      { name: PROBE_FRAME, src: `${s.tool}/_hubgate/health` },
    );
    frame = await pollUntil(
      async () => {
        const f = frameNamed(page, PROBE_FRAME);
        return f && f.url().startsWith(s.tool) && (await evalIn(f, () => document.readyState, null, 3000)) === 'complete' ? f : null;
      },
      { timeoutMs: 15_000 },
    );
    if (!frame) throw new Error(`the probe frame ${s.tool}/_hubgate/health did not load`);
  } else {
    await page.goto(`${s.tool}/_hubgate/health`, { waitUntil: 'load', timeout: 15_000 });
    frame = page.mainFrame();
  }
  const r = await evalIn(frame, async () => {
    const res = await fetch('/hub/api/user', { headers: { accept: 'application/json' } });
    return { status: res.status, text: (await res.text()).slice(0, 300) };
  });
  if (inFrame) await page.evaluate((name) => document.querySelectorAll(`iframe[name="${name}"]`).forEach((f) => f.remove()), PROBE_FRAME).catch(() => {});
  const noSession = r.status === 401 && /Not signed in/.test(r.text);
  return { session: !noSession, ...r };
}

/**
 * Log in at top level in `page` through the worker and the demo IdP.
 * @returns {Promise<{ok:boolean, url:string, reason?:string}>}
 */
export async function idpLogin(s, page, user, next = '/hub/home') {
  await page.goto(`${s.tool}/hub/oauth_login?next=${encodeURIComponent(next)}`, { waitUntil: 'load', timeout: 30_000 });
  const idp = new URL(s.idp.issuer).origin;
  if (page.url().startsWith(`${idp}/interaction/`)) {
    await page.fill('input[name="username"]', user, { timeout: 10_000 });
    await Promise.all([page.waitForNavigation({ timeout: 30_000, waitUntil: 'load' }).catch(() => {}), page.click('button[type="submit"]:not([name])', { timeout: 10_000 })]);
  }
  const want = new URL(next, s.tool);
  const ok = await pollUntil(async () => {
    const u = new URL(page.url());
    return u.origin === want.origin && u.pathname === want.pathname && (await page.evaluate(() => document.readyState)) === 'complete';
  }, { timeoutMs: 30_000 });
  return ok ? { ok: true, url: page.url() } : { ok: false, url: page.url(), reason: `the login did not end at ${want.href} (at ${page.url()})` };
}

// ---------------------------------------------------------------------------
// JupyterLab

/** The frame (or page main frame) shows JupyterLab's shell. */
export const labReady = (s) => async (frame) => {
  const u = new URL(frame.url());
  if (u.origin !== s.tool || !/^\/user\/[^/]+\/lab/.test(u.pathname)) return false;
  return evalIn(frame, () => !!document.querySelector('#main .jp-LabShell, .jp-LabShell'), null, 3000);
};

/**
 * Drive JupyterLab's UI in `frame`: open a Python 3 notebook from the
 * launcher, type `code` in the first cell, run it with Shift+Enter, and
 * return the text of its execute_result output.
 * @returns {Promise<{ok:boolean, output?:string, step:string, detail?:string, ms:number}>}
 */
export async function runInNotebookUi(frame, code = '1 + 1', { timeoutMs = 120_000 } = {}) {
  const t0 = Date.now();
  const left = () => Math.max(1000, timeoutMs - (Date.now() - t0));
  let step = 'launcher';
  try {
    const card = frame.locator('.jp-LauncherCard[data-category="Notebook"]').first();
    await card.waitFor({ state: 'visible', timeout: Math.min(left(), 60_000) });
    await card.click();
    step = 'notebook opens';
    const cell = frame.locator('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell').first();
    await cell.waitFor({ state: 'visible', timeout: Math.min(left(), 60_000) });
    step = 'kernel becomes idle';
    const idle = await pollUntil(
      () =>
        evalIn(frame, () => {
          const el = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator');
          const status = el?.getAttribute('data-status') ?? null;
          const text = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-KernelStatus, .jp-StatusBar-TextItem')?.textContent ?? '';
          return status === 'idle' || /\bIdle\b/.test(text);
        }, null, 3000),
      { timeoutMs: Math.min(left(), 90_000), intervalMs: 500 },
    );
    if (!idle) {
      const status = await evalIn(frame, () => [...document.querySelectorAll('.jp-Notebook-ExecutionIndicator, .jp-StatusBar-TextItem')].map((e) => e.getAttribute('data-status') ?? e.textContent).join(' | '), null, 3000).catch(() => '?');
      return { ok: false, step, detail: `kernel status: ${status}`, ms: Date.now() - t0 };
    }
    step = 'type and run the cell';
    const editor = cell.locator('.cm-content').first();
    await editor.click({ timeout: 10_000 });
    await editor.pressSequentially(code, { delay: 20, timeout: 10_000 });
    const readCell = () =>
      evalIn(frame, () => {
        const c = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell');
        const r = c?.querySelector('.jp-OutputArea-executeResult .jp-OutputArea-output') ?? c?.querySelector('.jp-OutputArea-executeResult');
        const err = c?.querySelector('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"], .jp-RenderedText[data-mime-type="application/vnd.jupyter.error"]');
        const prompt = c?.querySelector('.jp-InputPrompt')?.textContent?.trim() ?? '';
        if (r) return { result: r.textContent.trim(), prompt };
        if (err) return { error: err.textContent.trim().slice(0, 500), prompt };
        return { prompt };
      }, null, 3000);
    // Shift+Enter; when the cell was not taken up (prompt still `[ ]:`, e.g.
    // the notebook's first kernel connection was being replaced), run the
    // same cell again: `1 + 1` is idempotent. At most 3 tries.
    let out = null;
    let prompt = '';
    for (let attempt = 1; attempt <= 3 && !out; attempt += 1) {
      step = `execute_result (run ${attempt})`;
      if (attempt > 1) await cell.locator('.cm-content').first().click({ timeout: 10_000 });
      await (attempt > 1 ? cell.locator('.cm-content').first() : editor).press(attempt > 1 ? 'Control+Enter' : 'Shift+Enter', { timeout: 10_000 });
      const tryEnd = Date.now() + Math.min(left(), 20_000);
      while (Date.now() < tryEnd) {
        const r = await readCell().catch(() => ({ prompt: '?' }));
        prompt = r.prompt;
        if (r.result !== undefined || r.error !== undefined) {
          out = r;
          break;
        }
        // taken up ([*] or a count): wait for it, beyond this try's 20 s
        if (/\[(\*|\d+)\]/.test(prompt)) {
          const done = await pollUntil(async () => {
            const x = await readCell();
            return x.result !== undefined || x.error !== undefined ? x : null;
          }, { timeoutMs: Math.min(left(), 60_000), intervalMs: 300 });
          out = done;
          break;
        }
        await sleep(300);
      }
      if (out || /\[(\*|\d+)\]/.test(prompt)) break;
    }
    if (!out) return { ok: false, step, detail: `no output under the cell (its prompt: ${JSON.stringify(prompt)})`, ms: Date.now() - t0 };
    if (out.error) return { ok: false, step, detail: `error output: ${out.error}`, ms: Date.now() - t0 };
    return { ok: true, step: 'done', output: out.result, ms: Date.now() - t0 };
  } catch (err) {
    return { ok: false, step, detail: err.message.split('\n')[0], ms: Date.now() - t0 };
  }
}

/**
 * Run `code` through JupyterLab's own server from `frame`'s JavaScript: create
 * a kernel over REST (with the `_xsrf` cookie the frame can read), open its
 * WebSocket, send execute_request (Jupyter messaging v5, JSON), wait for the
 * execute_result, delete the kernel. So exactly the frame's cookie partition
 * is used, as JupyterLab itself would.
 */
export async function runInKernelFromFrame(frame, code = '1 + 1', { timeoutMs = 90_000 } = {}) {
  return evalIn(
    frame,
    async ({ code, timeoutMs }) => {
      const m = location.pathname.match(/^(.*?\/user\/[^/]+\/)/);
      if (!m) return { ok: false, step: 'locate server', detail: `not a single-user server page: ${location.href}` };
      const base = m[1];
      const xsrf = decodeURIComponent((document.cookie.match(/(?:^|;\s*)_xsrf=([^;]*)/) || [])[1] || '');
      const headers = { 'content-type': 'application/json', accept: 'application/json' };
      if (xsrf) headers['x-xsrftoken'] = xsrf;
      const created = await fetch(`${base}api/kernels`, { method: 'POST', headers, body: JSON.stringify({ name: 'python3' }) });
      const ctext = await created.text();
      if (created.status !== 201) return { ok: false, step: 'create kernel (POST api/kernels)', detail: `${created.status} ${ctext.slice(0, 300)} (document.cookie has _xsrf: ${!!xsrf})` };
      const kernel = JSON.parse(ctext);
      const session = crypto.randomUUID();
      const msgId = crypto.randomUUID();
      const ws = new WebSocket(`wss://${location.host}${base}api/kernels/${kernel.id}/channels?session_id=${session}`);
      const result = await new Promise((resolve) => {
        const timer = setTimeout(() => resolve({ ok: false, step: 'execute', detail: `no execute_result in ${timeoutMs} ms` }), timeoutMs);
        const finish = (r) => {
          clearTimeout(timer);
          ws.onclose = null;
          resolve(r);
        };
        ws.onerror = () => finish({ ok: false, step: 'kernel WebSocket', detail: 'WebSocket error (refused or failed)' });
        ws.onclose = (e) => finish({ ok: false, step: 'kernel WebSocket', detail: `closed: ${e.code} ${e.reason}` });
        ws.onopen = () =>
          ws.send(
            JSON.stringify({
              header: { msg_id: msgId, msg_type: 'execute_request', username: '', session, date: new Date().toISOString(), version: '5.3' },
              parent_header: {},
              metadata: {},
              content: { code, silent: false, store_history: false, user_expressions: {}, allow_stdin: false, stop_on_error: true },
              channel: 'shell',
              buffers: [],
            }),
          );
        ws.onmessage = (ev) => {
          let msg;
          try {
            msg = JSON.parse(ev.data);
          } catch {
            return;
          }
          if (msg.parent_header?.msg_id !== msgId) return;
          if (msg.msg_type === 'execute_result') finish({ ok: true, step: 'done', output: msg.content.data['text/plain'] });
          else if (msg.msg_type === 'error') finish({ ok: false, step: 'execute', detail: `${msg.content.ename}: ${msg.content.evalue}` });
        };
      });
      try {
        ws.close();
      } catch {
        /* closed */
      }
      await fetch(`${base}api/kernels/${kernel.id}`, { method: 'DELETE', headers }).catch(() => {});
      return result;
    },
    { code, timeoutMs },
    timeoutMs + 15_000,
  );
}

export { sleep };
