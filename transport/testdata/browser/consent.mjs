// Drives mcpauth's OAuth consent page in a real headless Chromium, as a
// person would: open the authorization URL, read the page, type the
// enrollment code, press Approve, and follow the redirect to the client.
//
//   node consent.mjs <authorize-url> <enrollment-code> <screenshot-path>
//
// Prints one JSON line {"redirect": "<url>", "title": "<page title>"} and
// exits 0. Errors go to stderr with exit 1; the whole run is bounded by a
// 30 s timeout, which exits 2. It uses Debian's /usr/bin/chromium (no
// browser is ever downloaded) and sends nothing beyond loopback: the
// client's redirect URI (http://127.0.0.1:9/...) is answered by a route
// inside the browser, so no connection is made to it.
import { chromium } from 'playwright-core';

const REDIRECT_PREFIX = 'http://127.0.0.1:9/';
const CHROMIUM = process.env.MCPAUTH_CHROMIUM || '/usr/bin/chromium';
const OVERALL_TIMEOUT_MS = 30_000;

const [authorizeURL, enrollmentCode, screenshotPath] = process.argv.slice(2);
if (!authorizeURL || !enrollmentCode || !screenshotPath) {
  console.error('usage: node consent.mjs <authorize-url> <enrollment-code> <screenshot-path>');
  process.exit(1);
}

let browser;
const timer = setTimeout(() => {
  console.error(`consent.mjs: timed out after ${OVERALL_TIMEOUT_MS / 1000} s`);
  // Playwright kills the browser it launched when this process exits.
  process.exit(2);
}, OVERALL_TIMEOUT_MS);

async function main() {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Playwright gives every launch a fresh, temporary --user-data-dir of
    // its own (and refuses one passed in args), removed again on close.
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    timeout: 20_000,
  });
  const context = await browser.newContext({ viewport: { width: 800, height: 900 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);

  // Anything the page itself complains about (a CSP refusal, a script
  // error) is a defect of the page: collect it and fail at the end.
  const complaints = [];
  page.on('console', (m) => {
    if (m.type() === 'error') complaints.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => complaints.push(`page error: ${e.message}`));

  // The client's redirect URI is answered inside the browser. Chromium
  // refuses port 9 itself (ERR_UNSAFE_PORT, before any connection), and
  // Playwright does not route the hop of a redirect, so the redirect is
  // taken from the browser's own request for it; the route answers the
  // navigation Chromium retries to that URL, so nothing is ever sent there.
  await context.route(`${REDIRECT_PREFIX}**`, (route) =>
    route.fulfill({ status: 200, contentType: 'text/plain', body: 'ok' }));
  // Any address but the server under test and the redirect URI is refused.
  const serverOrigin = new URL(authorizeURL).origin;
  await context.route((u) => u.origin !== serverOrigin && !u.href.startsWith(REDIRECT_PREFIX), (route) => {
    complaints.push(`unexpected request: ${route.request().url()}`);
    return route.abort('blockedbyclient');
  });

  // The browser following the server's answer to the submitted form: a
  // request for the redirect URI whose previous hop is POST /authorize.
  // (A Content-Security-Policy whose form-action left the client out would
  // stop the browser before this request.) Any other answer to the form
  // ends the wait at once.
  const outcome = new Promise((resolve) => {
    page.on('request', (req) => {
      const prev = req.redirectedFrom();
      if (req.url().startsWith(REDIRECT_PREFIX) && req.isNavigationRequest() && prev &&
          prev.method() === 'POST' && prev.url() === `${serverOrigin}/authorize`) {
        resolve({ redirect: req.url() });
      }
    });
    page.on('response', (r) => {
      if (r.request().method() === 'POST' && r.frame() === page.mainFrame() && (r.status() < 300 || r.status() >= 400)) {
        resolve({ refused: r });
      }
    });
  });

  const resp = await page.goto(authorizeURL, { waitUntil: 'load' });
  if (!resp || resp.status() !== 200) {
    throw new Error(`consent page: HTTP ${resp ? resp.status() : 'no response'}`);
  }
  const title = await page.title();
  await page.screenshot({ path: screenshotPath, fullPage: true });

  await page.locator('input[name="enrollment_code"]').fill(enrollmentCode);
  await page.locator('button[name="action"][value="approve"]').click();
  const got = await Promise.race([
    outcome,
    new Promise((resolve) => setTimeout(resolve, 10_000, {})),
  ]);
  if (!got.redirect) {
    // Say what the person would have seen instead.
    let why = 'Approve did not lead the browser to the redirect URI';
    if (got.refused) {
      const origin = (await got.refused.request().allHeaders()).origin;
      why += `: POST ${got.refused.url()} answered ${got.refused.status()} (the browser sent Origin: ${origin ?? '(none)'})`;
      await page.waitForLoadState('load', { timeout: 2_000 }).catch(() => {});
    } else {
      why += ' within 10 s';
    }
    let shown = '';
    try {
      shown = (await page.locator('body').innerText({ timeout: 2_000 })).trim().slice(0, 400);
    } catch { /* the page may be gone */ }
    throw new Error(`${why}; the page shows: ${JSON.stringify(shown)}` +
      (complaints.length ? `\n  ${complaints.join('\n  ')}` : ''));
  }
  const redirectURL = got.redirect;
  // Chromium's retry of the refused navigation lands on the routed answer.
  await page.waitForURL((u) => u.href.startsWith(REDIRECT_PREFIX), { waitUntil: 'commit', timeout: 5_000 }).catch(() => {});
  if (complaints.length > 0) {
    throw new Error(`the page complained:\n  ${complaints.join('\n  ')}`);
  }
  process.stdout.write(JSON.stringify({ redirect: redirectURL, title }) + '\n');
}

main().then(
  async () => {
    await browser?.close().catch(() => {});
    clearTimeout(timer);
    process.exit(0);
  },
  async (err) => {
    console.error(`consent.mjs: ${err && err.stack ? err.stack : err}`);
    await browser?.close().catch(() => {});
    clearTimeout(timer);
    process.exit(1);
  },
);
