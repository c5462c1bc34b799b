#!/usr/bin/env node
/*
 * console.test.mjs -- browser tests of the Evidence Console (issue #4).
 *
 * A plain node script: playwright-core drives Debian's chromium (headless)
 * against the real stack, which this script starts itself from the build
 * tree: the three services and the gateway, on ipc:// sockets in a fresh
 * temporary folder and a free loopback port, with the console served from
 * the source tree. A second gateway with a token file checks the bearer
 * token handling.
 *
 * Environment:
 *   CV_TEST_BUILD_DIR   build tree (services/*, gateway/cavra-gateway)
 *   CV_TEST_SOURCE_DIR  source tree (gateway/console); default: ../..
 *   CAVRA_DATABASE_URL  a migrated PostgreSQL (scripts/test.sh sets it)
 *   CV_CHROMIUM         browser binary (default /usr/bin/chromium)
 *
 * Accessibility: axe-core (npm, pinned in package-lock.json) is evaluated in
 * the page at 1280 and 390 px; a serious or critical violation fails.
 *
 * Output: "ok - name" / "not ok - name: reason" per test, then exactly
 * "N passed, M failed". Exit 1 on any failure. Screenshots go to
 * $CV_TEST_BUILD_DIR/console-screenshots/console-1280.png and
 * console-390.png. Every process started here is stopped on the way out,
 * also after an exception, a signal or the overall time limit.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SOURCE_DIR = process.env.CV_TEST_SOURCE_DIR || path.resolve(HERE, '..', '..');
const BUILD_DIR = process.env.CV_TEST_BUILD_DIR || '';
const CHROMIUM = process.env.CV_CHROMIUM || '/usr/bin/chromium';
const OVERALL_LIMIT_MS = 240_000; // after set-up; ctest gives 300 s in all
const TEST_LIMIT_MS = 60_000;
const STARTED_AT = Date.now();

const P = '/runtime/go-pilot/rollback-drill-notifications/acknowledgements/audit-delivery';
const STREAM = '/runtime/go-pilot/rollback-drill-notifications';
const KIND_RANK = {
  recovery_escalation_plan: 0,
  connector_delivery: 1,
  recovery_escalation_ack: 2,
  recovery_escalation_retry_plan: 3,
  executive_report_schedule_run: 4,
};

/* ------------------------------------------------------------ processes */

const children = []; // {name, proc, log}
let aborted = false; // a signal or the time limit: stop, print no more results
const results = { passed: 0, failed: 0 };
let tmpDir = null;
let browser = null;

function log(msg) {
  process.stderr.write(`console.test: ${msg}\n`);
}

function startProcess(name, bin, env) {
  if (!fs.existsSync(bin)) throw new Error(`${name}: binary not found: ${bin} (build first)`);
  const logPath = path.join(tmpDir, `${name}.log`);
  const fd = fs.openSync(logPath, 'a');
  const proc = spawn(bin, [], { env, stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  const child = { name, proc, log: logPath, exited: false, code: null };
  proc.on('exit', (code, signal) => {
    child.exited = true;
    child.code = code === null ? `signal ${signal}` : code;
  });
  proc.on('error', (e) => {
    child.exited = true;
    child.code = `spawn error ${e.message}`;
  });
  children.push(child);
  return child;
}

function tail(file, lines = 25) {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function printLogs() {
  for (const c of children) {
    process.stderr.write(`---- last lines of ${c.name} (${c.log}) ----\n${tail(c.log)}\n`);
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function stopProcess(c) {
  if (c.exited) return;
  try { c.proc.kill('SIGTERM'); } catch { /* gone */ }
  for (let i = 0; i < 50 && !c.exited; i++) await sleep(100);
  if (!c.exited) {
    try { c.proc.kill('SIGKILL'); } catch { /* gone */ }
    for (let i = 0; i < 20 && !c.exited; i++) await sleep(50);
  }
}

let cleanedUp = false;
async function cleanup() {
  if (cleanedUp) return;
  cleanedUp = true;
  if (browser) {
    try { await Promise.race([browser.close(), sleep(10_000)]); } catch { /* ignore */ }
    browser = null;
  }
  // Gateways first, then the services.
  const order = [...children].sort((a, b) => (b.name.startsWith('gateway') ? 1 : 0) - (a.name.startsWith('gateway') ? 1 : 0));
  for (const c of order) await stopProcess(c);
  if (tmpDir) {
    try { fs.rmSync(tmpDir, { recursive: true, force: true }); } catch { /* ignore */ }
  }
}

/* Last resort when node exits without cleanup(): no process is left. */
process.on('exit', () => {
  for (const c of children) {
    if (!c.exited) {
      try { c.proc.kill('SIGKILL'); } catch { /* gone */ }
    }
  }
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    if (aborted) return;
    aborted = true;
    log(`${sig}: stopping the browser and the stack`);
    console.log(`not ok - interrupted by ${sig}`);
    console.log(`${results.passed} passed, ${results.failed + 1} failed`);
    cleanup().finally(() => process.exit(1));
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function httpGet(url, headers = {}) {
  const res = await fetch(url, { headers });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, json, text };
}

async function waitReady(base, procs, limitMs = 30_000) {
  const end = Date.now() + limitMs;
  let last = 'no answer';
  while (Date.now() < end) {
    for (const c of procs) {
      if (c.exited) throw new Error(`${c.name} exited (${c.code}) during start-up`);
    }
    try {
      const r = await httpGet(`${base}/readyz`);
      if (r.status === 200) return;
      last = `HTTP ${r.status} ${r.text.slice(0, 200)}`;
    } catch (e) {
      last = e.message;
    }
    await sleep(200);
  }
  throw new Error(`gateway not ready after ${limitMs} ms: ${last}`);
}

/* ---------------------------------------------------------------- setup */

function ensureBrowserDeps() {
  // setup.sh is idempotent and quiet when everything is in place.
  const r = spawnSync('bash', [path.join(HERE, 'setup.sh')], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) throw new Error(`tests/browser/setup.sh failed (exit ${r.status})`);
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing after setup.sh`);
}

/* ----------------------------------------------------------- assertions */

class AssertionError extends Error {}

function assert(cond, msg) {
  if (!cond) throw new AssertionError(msg);
}

function eq(actual, expected, what) {
  if (actual !== expected) {
    throw new AssertionError(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
}

/* --------------------------------------------------------- page helpers */

async function waitRefreshed(page, before) {
  await page.waitForFunction((n) => Number(document.body.dataset.refreshed || 0) > n, before, { timeout: 20_000 });
}

async function refreshedCount(page) {
  return Number((await page.getAttribute('body', 'data-refreshed')) || 0);
}

async function loadPage(page, url) {
  await page.goto(url, { waitUntil: 'load' });
  await waitRefreshed(page, 0);
}

/* The dashboard value of a card; fails plainly when it did not load. */
async function card(page, id) {
  const v = await page.getAttribute(`#${id}`, 'data-value');
  if (v === null || v === '') {
    const err = ((await page.textContent('#dash-error')) || '').trim();
    throw new AssertionError(`dashboard card #${id} shows no value (${err || 'dashboard not loaded'})`);
  }
  const n = Number(v);
  assert(Number.isFinite(n), `dashboard card #${id} is not a number: ${v}`);
  return n;
}

/*
 * Submits a console form and waits until it is done (its request answered
 * and the page refreshed). Returns {ok, text, id, response, json}: the
 * result shown next to the form and the gateway's answer to the POST.
 */
async function submitForm(page, formId, urlPart, action) {
  const before = Number((await page.getAttribute(`#${formId}`, 'data-completed')) || 0);
  const responseP = page.waitForResponse(
    (r) => r.request().method() === 'POST' && r.url().includes(urlPart), { timeout: 20_000 });
  if (action) await action();
  else await page.click(`#${formId} button[type=submit]`);
  const response = await responseP;
  let json = null;
  try { json = await response.json(); } catch { /* not JSON */ }
  await page.waitForFunction(
    ([id, n]) => Number(document.getElementById(id).dataset.completed || 0) > n, [formId, before], { timeout: 20_000 });
  const cls = (await page.getAttribute(`#${formId}-result`, 'class')) || '';
  const text = ((await page.textContent(`#${formId}-result`)) || '').trim();
  const ok = cls.split(/\s+/).includes('result-ok');
  const id = ok ? ((await page.textContent(`#${formId}-result .result-id`)) || '').trim() : null;
  return { ok, text, id, status: response.status(), json };
}

function expectCreated(res, what) {
  if (!res.ok) {
    throw new AssertionError(`${what} failed: HTTP ${res.status}: ${res.json && res.json.detail ? res.json.detail : res.text}`);
  }
}

async function selectOptions(page, selector) {
  return page.$$eval(`${selector} option`, (os) => os.map((o) => o.value));
}

async function waitOption(page, selector, value) {
  await page.waitForFunction(
    ([sel, v]) => Array.from(document.querySelectorAll(`${sel} option`)).some((o) => o.value === v),
    [selector, value], { timeout: 15_000 });
}

/* axe-core's source, evaluated in the page (no script tag, no network). */
let axeSource = null;

/* Runs axe-core over the whole page; returns its violations. */
async function axeViolations(page) {
  if (axeSource === null) {
    axeSource = fs.readFileSync(path.join(HERE, 'node_modules', 'axe-core', 'axe.min.js'), 'utf8');
  }
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(axeSource);
  return page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({
      id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(' ')),
    }));
  });
}

function describeViolations(vs) {
  return vs.map((v) => `${v.id} (${v.impact}, ${v.nodes.length} node(s): ${v.nodes.slice(0, 3).join('; ')})`).join(', ');
}

/* The dashboard JSON the page itself just loaded (a Refresh click). */
async function refreshDashboard(page) {
  const before = await refreshedCount(page);
  const respP = page.waitForResponse((r) => r.request().method() === 'GET' && r.url().endsWith('/dashboard'),
    { timeout: 20_000 });
  await page.click('#dash-refresh');
  const json = await (await respP).json();
  await waitRefreshed(page, before);
  return json;
}

/* ---------------------------------------------------------------- tests */


async function runTest(name, fn) {
  let timer;
  try {
    await Promise.race([
      fn(),
      new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${TEST_LIMIT_MS} ms`)), TEST_LIMIT_MS); }),
    ]);
    if (aborted) return;
    results.passed++;
    console.log(`ok - ${name}`);
  } catch (e) {
    if (aborted) return;
    results.failed++;
    const reason = String(e && e.message ? e.message : e).split('\n').filter(Boolean).slice(0, 3).join(' | ');
    console.log(`not ok - ${name}: ${reason}`);
    if (!(e instanceof AssertionError) && e && e.stack) log(e.stack);
  } finally {
    clearTimeout(timer);
  }
}

async function main() {
  if (!BUILD_DIR) throw new Error('CV_TEST_BUILD_DIR is not set (run through ctest, or set it to the build folder)');
  const dbUrl = process.env.CAVRA_DATABASE_URL;
  if (!dbUrl) throw new Error('CAVRA_DATABASE_URL is not set (scripts/test.sh sets it to a migrated PostgreSQL)');

  ensureBrowserDeps();
  // The time limit counts from here: a first-time install of chromium by
  // setup.sh is not part of the tests' own budget.
  armOverallLimit();
  const { chromium } = await import('playwright-core');

  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cv-console-'));
  const shotDir = path.join(BUILD_DIR, 'console-screenshots');
  fs.mkdirSync(shotDir, { recursive: true });

  /* The stack: services on ipc:// sockets, one sandbox gateway and one
   * gateway with a token file. */
  const port = await freePort();
  let port2 = await freePort();
  while (port2 === port) port2 = await freePort();
  const baseEnv = { ...process.env };
  delete baseEnv.CAVRA_TOKEN_FILE;
  delete baseEnv.CAVRA_RPC_KEY_FILE;
  /* RPC keys: services accept the gateway's signed envelopes only. */
  const keygen = path.join(BUILD_DIR, 'tools', 'cavra-keygen');
  const gwKey = path.join(tmpDir, 'gateway.key');
  const kg = spawnSync(keygen, ['gateway', gwKey, 'admin', '--delegate'], { encoding: 'utf8' });
  if (kg.status !== 0) throw new Error(`cavra-keygen failed: ${kg.stderr}`);
  fs.writeFileSync(path.join(tmpDir, 'principals'), kg.stdout);
  Object.assign(baseEnv, {
    CAVRA_PRINCIPALS_FILE: path.join(tmpDir, 'principals'),
    CAVRA_DATABASE_URL: dbUrl,
    CAVRA_ACK_URL: `ipc://${tmpDir}/ack.sock`,
    CAVRA_RETRY_URL: `ipc://${tmpDir}/retry.sock`,
    CAVRA_REPORT_URL: `ipc://${tmpDir}/report.sock`,
    CAVRA_GATEWAY_HOST: '127.0.0.1',
    CAVRA_CONSOLE_DIR: path.join(SOURCE_DIR, 'gateway', 'console'),
  });
  const services = ['ack', 'retry', 'report'].map((s) =>
    startProcess(s, path.join(BUILD_DIR, 'services', s, `cavra-${s}`), baseEnv));
  const gw = startProcess('gateway', path.join(BUILD_DIR, 'gateway', 'cavra-gateway'),
    { ...baseEnv, CAVRA_GATEWAY_PORT: String(port), CAVRA_RPC_KEY_FILE: gwKey });
  const base = `http://127.0.0.1:${port}`;
  try {
    await waitReady(base, [...services, gw]);
  } catch (e) {
    printLogs();
    throw e;
  }

  const TOKENS = {
    auditor: `console-auditor-${randomBytes(8).toString('hex')}`,
  };
  const tokenFile = path.join(tmpDir, 'tokens');
  fs.writeFileSync(tokenFile,
    `# console browser test tokens\n${createHash('sha256').update(TOKENS.auditor).digest('hex')} console-auditor auditor\n`,
    { mode: 0o600 });
  const gw2 = startProcess('gateway-tokens', path.join(BUILD_DIR, 'gateway', 'cavra-gateway'),
    { ...baseEnv, CAVRA_GATEWAY_PORT: String(port2), CAVRA_TOKEN_FILE: tokenFile, CAVRA_RPC_KEY_FILE: gwKey });
  const base2 = `http://127.0.0.1:${port2}`;
  let gw2Error = null;
  try {
    await waitReady(base2, [gw2], 15_000);
  } catch (e) {
    gw2Error = e.message;
  }

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Signals are ours to handle (cleanup() closes the browser).
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  const requested = [];
  page.on('request', (r) => requested.push(r.url()));

  const nonce = randomBytes(4).toString('hex');
  const state = { planId: null };
  const needPlan = () => {
    if (!state.planId) throw new AssertionError('needs the plan recorded by the "record escalation plan" test');
    return state.planId;
  };

  await runTest('page loads with all cards and labelled inputs, no external resources', async () => {
    await loadPage(page, `${base}/`);
    eq(await page.title(), 'CAVRA Recovery · Evidence Console', 'page title');
    const cards = ['dash-alert-level', 'dash-plan-count', 'dash-failed-count', 'dash-ack-count',
      'dash-retry-count', 'dash-retryable-count', 'dash-run-count'];
    for (const id of cards) assert(await page.isVisible(`#${id}`), `card #${id} is not visible`);
    const labels = await page.$$eval('.card .card-label', (ns) => ns.map((n) => n.textContent.replace(/\u00ad/g, '').trim()));
    for (const want of ['Overall alert level', 'Escalation plans', 'Failed deliveries', 'Acknowledgements',
      'Retry plans', 'Retryable deliveries', 'Executive report runs']) {
      assert(labels.includes(want), `no card labelled "${want}" (have ${labels.join(', ')})`);
    }
    for (const form of ['form-plan', 'form-delivery', 'form-ack', 'form-retry', 'form-report']) {
      assert(await page.isVisible(`#${form}`), `form #${form} is not visible`);
    }
    const unlabelled = await page.$$eval('input, select, textarea', (els) => els
      .filter((e) => e.type !== 'hidden')
      .filter((e) => {
        const viaLabel = Array.from(e.labels || []).some((l) => l.textContent.trim() !== '');
        return !viaLabel && !(e.getAttribute('aria-label') || '').trim();
      })
      .map((e) => e.id || e.name || e.outerHTML.slice(0, 60)));
    eq(unlabelled.length, 0, `inputs without a label (${unlabelled.join(', ')})`);
    const foreign = requested.filter((u) => !u.startsWith(`${base}/`) && !u.startsWith('data:'));
    eq(foreign.length, 0, `requests outside the gateway (${foreign.join(', ')})`);
    // Numbers on the cards: the dashboard loaded.
    await card(page, 'dash-plan-count');
    const level = await page.getAttribute('#dash-alert-level', 'data-value');
    assert(level, 'the alert level card is empty');
    eq(pageErrors.length, 0, `page errors (${pageErrors.join('; ')})`);
  });

  await runTest('record escalation plan: id shown, plan card increments, buttons disabled in flight', async () => {
    const before = await card(page, 'dash-plan-count');
    const rows = page.locator('#plan-routes .route');
    eq(await rows.count(), 1, 'initial route rows');
    await page.fill('#plan-slo', '240');
    await rows.nth(0).locator('[data-name=provider]').fill('slack');
    await rows.nth(0).locator('[data-name=severity]').selectOption('critical');
    await rows.nth(0).locator('[data-name=reason]').fill(`console browser test ${nonce}`);
    await rows.nth(0).locator('[data-name=slo_breached]').check();
    await page.click('#plan-add-route');
    await rows.nth(1).locator('[data-name=provider]').fill('pagerduty');
    await rows.nth(1).locator('[data-name=severity]').selectOption('warning');
    await page.click('#plan-add-route');
    eq(await rows.count(), 3, 'route rows after adding two');
    await rows.nth(2).locator('.route-remove').click();
    eq(await rows.count(), 2, 'route rows after removing one');

    // Hold the POST a moment to see the buttons disabled while in flight.
    const routeGlob = `**${P}/recovery-escalation-plan`;
    await page.route(routeGlob, async (route) => { await sleep(400); await route.continue(); });
    let disabledInFlight = null;
    const res = await submitForm(page, 'form-plan', '/recovery-escalation-plan', async () => {
      await page.click('#form-plan button[type=submit]');
      disabledInFlight = await page.$$eval('#form-plan button', (bs) => bs.every((b) => b.disabled));
    });
    await page.unroute(routeGlob);
    assert(disabledInFlight === true, 'the form buttons were not all disabled while the request was in flight');
    expectCreated(res, 'recording the plan');
    eq(res.status, 201, 'HTTP status');
    const plan = res.json.plan;
    assert(/^gordackrecoveryesc-[0-9a-f]{16}$/.test(plan.plan_id), `plan id ${plan.plan_id}`);
    eq(res.id, plan.plan_id, 'plan id shown next to the form');
    eq(JSON.stringify(plan.selected_providers), JSON.stringify(['pagerduty', 'slack']), 'selected providers');
    eq(await card(page, 'dash-plan-count'), before + 1, 'plan count card');
    eq(await page.inputValue('#ack-plan'), plan.plan_id, 'the ack plan picker selects the new plan');
    state.planId = plan.plan_id;
    state.planAlert = plan.alert_level;
  });

  await runTest('report delivery attempt (failed, 503): failed deliveries card increments', async () => {
    const planId = needPlan();
    const before = await card(page, 'dash-failed-count');
    await page.selectOption('#delivery-plan', planId);
    await waitOption(page, '#delivery-provider', 'slack');
    await page.selectOption('#delivery-provider', 'slack');
    await page.uncheck('#delivery-success');
    await page.fill('#delivery-status', '503');
    await page.fill('#delivery-attempts', '1');
    await page.fill('#delivery-error', 'upstream unavailable');
    const res = await submitForm(page, 'form-delivery', '/delivery-attempts');
    expectCreated(res, 'recording the delivery attempt');
    eq(res.status, 201, 'HTTP status');
    const d = res.json.delivery;
    assert(d && /^rcd-/.test(d.delivery_id || ''), `delivery id ${d && d.delivery_id}`);
    eq(res.id, d.delivery_id, 'delivery id shown next to the form');
    eq(await card(page, 'dash-failed-count'), before + 1, 'failed deliveries card');
  });

  await runTest('acknowledge via plan picker and provider picker: ack card increments', async () => {
    const planId = needPlan();
    const before = await card(page, 'dash-ack-count');
    const plans = await selectOptions(page, '#ack-plan');
    assert(plans.includes(planId), 'the plan picker does not list the new plan');
    await page.selectOption('#ack-plan', planId);
    await waitOption(page, '#ack-provider', 'pagerduty');
    eq(JSON.stringify(await selectOptions(page, '#ack-provider')), JSON.stringify(['pagerduty', 'slack']),
      "provider picker (the plan's providers)");
    await page.selectOption('#ack-provider', 'slack');
    await page.selectOption('#ack-state', 'accepted');
    await page.fill('#ack-by', 'release.manager');
    await page.fill('#ack-ref', 'CHG-1001');
    await page.fill('#ack-reason', 'slack delivery failed after the drill');
    await page.fill('#ack-notes', 'Reviewed with the connector owner.');
    const res = await submitForm(page, 'form-ack', '/acknowledgements');
    expectCreated(res, 'acknowledging');
    eq(res.status, 201, 'HTTP status');
    const a = res.json.acknowledgement;
    assert(/^gordackrecoveryescack-[0-9a-f]{16}$/.test(a.acknowledgement_id), `ack id ${a.acknowledgement_id}`);
    eq(res.id, a.acknowledgement_id, 'ack id shown next to the form');
    eq(a.provider, 'slack', 'acknowledged provider');
    eq(a.acknowledgement_state, 'accepted', 'acknowledgement state');
    eq(await card(page, 'dash-ack-count'), before + 1, 'acknowledgement card');
  });

  await runTest('plan retries: retry plan id shown, retry plan and retryable cards increment', async () => {
    const planId = needPlan();
    const before = await card(page, 'dash-retry-count');
    const beforeRetryable = await card(page, 'dash-retryable-count');
    await page.fill('#retry-max', '3');
    await page.check('#retry-immediate');
    eq(await page.inputValue('#retry-delay'), '0', 'delay default with immediate retry');
    await page.fill('#retry-multiplier', '2');
    await page.selectOption('#retry-plan', planId);
    const res = await submitForm(page, 'form-retry', '/retry-plan');
    expectCreated(res, 'planning retries');
    eq(res.status, 201, 'HTTP status');
    const p = res.json.plan;
    assert(/^gordackrecoveryescretry-[0-9a-f]{16}$/.test(p.retry_plan_id || ''), `retry plan id ${p.retry_plan_id}`);
    eq(res.id, p.retry_plan_id, 'retry plan id shown next to the form');
    const mine = (p.retry_decisions || []).find((d) => d.plan_id === planId && d.provider === 'slack');
    assert(mine, 'no retry decision for the failed slack delivery');
    eq(mine.action, 'retry', 'decision for the failed slack delivery');
    eq(await card(page, 'dash-retry-count'), before + 1, 'retry plan card');
    assert(p.retryable_count >= 1, `retryable_count ${p.retryable_count}`);
    eq(await card(page, 'dash-retryable-count'), beforeRetryable + p.retryable_count, 'retryable deliveries card');
  });

  await runTest('schedule executive report: run id shown and the report rendered', async () => {
    needPlan();
    const before = await card(page, 'dash-run-count');
    await page.fill('#report-slo', '240');
    await page.fill('#report-interval', '1440');
    await page.fill('#report-cadence', `console_test_${nonce}`);
    await page.check('#report-enabled');
    const res = await submitForm(page, 'form-report', '/schedule-run');
    expectCreated(res, 'scheduling the report run');
    eq(res.status, 201, 'HTTP status (a new schedule makes a new run)');
    const run = res.json.run;
    assert(/^gordackexecsched-[0-9a-f]{16}$/.test(run.run_id || ''), `run id ${run.run_id}`);
    eq(res.id, run.run_id, 'run id shown next to the form');
    assert((await card(page, 'dash-run-count')) >= before + 1, 'report run card did not increase');
    const rep = run.executive_report || {};
    const sum = rep.executive_summary || {};
    assert(Array.isArray(rep.key_risks), 'executive_report.key_risks is not an array');
    assert(Array.isArray(rep.recommended_actions), 'executive_report.recommended_actions is not an array');
    eq(((await page.textContent('#report-run-id')) || '').trim(), run.run_id, 'report run id');
    eq(((await page.textContent('#report-status')) || '').trim(), String(sum.status), 'report status');
    const impact = ((await page.textContent('#report-impact')) || '').trim();
    assert(sum.business_impact && impact === sum.business_impact, `business impact shown "${impact}"`);
    if (rep.key_risks.length > 0) {
      eq(await page.locator('#report-risks tbody tr').count(), rep.key_risks.length, 'key risk rows');
      const firstRisk = ((await page.textContent('#report-risks tbody tr:first-child')) || '');
      assert(firstRisk.includes(rep.key_risks[0].risk), 'first key risk text not shown');
    } else {
      assert(await page.isVisible('#report-risks'), 'key risks section missing');
    }
    if (rep.recommended_actions.length > 0) {
      eq(await page.locator('#report-actions li').count(), rep.recommended_actions.length, 'recommended actions');
    } else {
      assert(await page.isVisible('#report-actions'), 'recommended actions section missing');
    }
    const provs = Array.isArray(rep.provider_summary) ? rep.provider_summary.length : 0;
    if (provs > 0) eq(await page.locator('#report-providers tbody tr').count(), provs, 'provider summary rows');
    // The open escalation of this test's plan makes the report non-empty.
    assert(rep.key_risks.length > 0 || rep.recommended_actions.length > 0,
      'the report names no risk and no action although an escalation is open');
  });

  await runTest("invalid input shows the server's detail next to the form", async () => {
    const planId = needPlan();
    const plansBefore = await card(page, 'dash-plan-count');
    await page.fill('#plan-slo', '0');
    const res = await submitForm(page, 'form-plan', '/recovery-escalation-plan');
    assert(!res.ok, 'SLO 0 was accepted');
    eq(res.status, 400, 'HTTP status of SLO 0');
    const detail = res.json && res.json.detail;
    assert(detail && detail.includes('recovery_slo_minutes'), `detail names the field: ${detail}`);
    assert(res.text.includes(detail), `the form shows "${res.text}", not the server's detail "${detail}"`);
    eq(await card(page, 'dash-plan-count'), plansBefore, 'plan count after a rejected plan');
    await page.fill('#plan-slo', '240');

    const acksBefore = await card(page, 'dash-ack-count');
    await page.selectOption('#ack-plan', planId);
    await waitOption(page, '#ack-provider', 'slack');
    await page.selectOption('#ack-provider', 'slack');
    await page.fill('#ack-by', '');
    const res2 = await submitForm(page, 'form-ack', '/acknowledgements');
    assert(!res2.ok, 'an ack without acknowledged_by was accepted');
    eq(res2.status, 400, 'HTTP status of an ack without acknowledged_by');
    eq(res2.json && res2.json.detail, 'acknowledged_by is required', 'server detail');
    assert(res2.text.includes('acknowledged_by is required'), `the form shows "${res2.text}"`);
    eq(await card(page, 'dash-ack-count'), acksBefore, 'ack count after a rejected ack');
  });

  await runTest('evidence table lists the events; kind and plan filters and paging work', async () => {
    const planId = needPlan();
    const loads = async () => Number((await page.getAttribute('#stream-body', 'data-loads')) || 0);
    const apply = async () => {
      const n = await loads();
      await page.click('#filter-apply');
      await page.waitForFunction((m) => Number(document.getElementById('stream-body').dataset.loads || 0) > m, n);
    };
    await page.selectOption('#filter-kind', '');
    await page.fill('#filter-plan', '');
    await page.fill('#filter-provider', '');
    await page.selectOption('#filter-limit', '25');
    await apply();
    const all = await page.$$eval('#stream-body tr.event', (rs) => rs.map((r) => ({ kind: r.dataset.kind, plan: r.dataset.plan })));
    assert(all.length > 0, `the table is empty (${((await page.textContent('#stream-error')) || '').trim()})`);
    assert(all.some((r) => r.plan === planId), 'the newest events do not include the test plan');

    await page.fill('#filter-plan', planId);
    await apply();
    const mine = await page.$$eval('#stream-body tr.event', (rs) => rs.map((r) => ({ kind: r.dataset.kind, plan: r.dataset.plan })));
    assert(mine.length >= 3, `only ${mine.length} events for the plan`);
    const foreign = mine.filter((r) => r.plan !== planId);
    eq(foreign.length, 0, 'rows of other plans under the plan filter');
    const kinds = new Set(mine.map((r) => r.kind));
    for (const k of ['recovery_escalation_plan', 'connector_delivery', 'recovery_escalation_ack']) {
      assert(kinds.has(k), `no ${k} event for the plan (kinds ${[...kinds].join(', ')})`);
    }

    await page.selectOption('#filter-kind', 'recovery_escalation_ack');
    await apply();
    const acks = await page.$$eval('#stream-body tr.event', (rs) => rs.map((r) => r.dataset.kind));
    eq(acks.length, 1, 'ack events of the plan');
    eq(acks[0], 'recovery_escalation_ack', 'kind under the kind filter');

    // Paging over the whole stream, 10 a page.
    await page.selectOption('#filter-kind', '');
    await page.fill('#filter-plan', '');
    await page.selectOption('#filter-limit', '10');
    await apply();
    const page1 = await page.$$eval('#stream-body tr.event td:first-child', (ts) => ts.map((t) => Number(t.textContent)));
    assert(page1.length > 0 && page1.length <= 10, `first page has ${page1.length} rows`);
    assert(await page.isDisabled('#page-newer'), '"Newer" is enabled on the first page');
    if (!(await page.isDisabled('#page-older'))) {
      let n = await loads();
      await page.click('#page-older');
      await page.waitForFunction((m) => Number(document.getElementById('stream-body').dataset.loads || 0) > m, n);
      const page2 = await page.$$eval('#stream-body tr.event td:first-child', (ts) => ts.map((t) => Number(t.textContent)));
      assert(page2.length > 0, 'the second page is empty');
      assert(Math.max(...page2) < Math.min(...page1), 'the second page is not older than the first');
      n = await loads();
      await page.click('#page-newer');
      await page.waitForFunction((m) => Number(document.getElementById('stream-body').dataset.loads || 0) > m, n);
      const back = await page.$$eval('#stream-body tr.event td:first-child', (ts) => ts.map((t) => Number(t.textContent)));
      eq(JSON.stringify(back), JSON.stringify(page1), 'first page after Newer');
    } else {
      assert(page1.length < 10, 'a full page but "Older" is disabled');
    }
    await page.selectOption('#filter-limit', '25');
    await page.fill('#filter-plan', planId);
    await apply();
  });

  await runTest('clicking a plan opens its trace: plan, delivery, ack, retry plan, report run in order', async () => {
    const planId = needPlan();
    const link = page.locator(`#stream-body .trace-link[data-plan="${planId}"]`).first();
    const n = Number((await page.getAttribute('#trace-list', 'data-loads')) || 0);
    await link.click();
    await page.waitForFunction((m) => Number(document.getElementById('trace-list').dataset.loads || 0) > m, n);
    assert(await page.isVisible('#trace-section'), 'the trace section is hidden');
    eq(((await page.textContent('#trace-plan-id')) || '').trim(), planId, 'trace plan id');
    const err = ((await page.textContent('#trace-error')) || '').trim();
    assert(await page.isHidden('#trace-error'), `trace error: ${err}`);
    const kinds = await page.$$eval('#trace-list li.trace-item', (ls) => ls.map((l) => l.dataset.kind));
    eq(kinds[0], 'recovery_escalation_plan', 'first trace item');
    for (const k of Object.keys(KIND_RANK)) {
      assert(kinds.includes(k), `trace lacks a ${k} (has ${kinds.join(', ')})`);
    }
    for (let i = 1; i < kinds.length; i++) {
      assert(KIND_RANK[kinds[i - 1]] <= KIND_RANK[kinds[i]], `trace out of order: ${kinds.join(' > ')}`);
    }
    const summary = ((await page.textContent('#trace-list')) || '');
    assert(summary.includes('failed') && summary.includes('503'), 'the delivery step does not say failed/503');
    assert(summary.includes('accepted by release.manager'), 'the ack step does not name state and acknowledger');
    eq(await page.evaluate(() => document.activeElement && document.activeElement.id), 'trace-title',
      'focus moves to the trace heading');
    await page.screenshot({ path: path.join(shotDir, 'console-1280.png'), fullPage: true });
  });

  await runTest('verify button shown exactly when the gateway offers GET /runtime/evidence/verify', async () => {
    // Offered = listed in the gateway's OpenAPI document (what the page checks:
    // calling the route would walk the whole chain once more).
    const doc = await page.evaluate(async () => (await fetch('/openapi.json')).json());
    const offered = !!(doc.paths && doc.paths['/runtime/evidence/verify'] && doc.paths['/runtime/evidence/verify'].get);
    const probe = offered ? 'listed in /openapi.json' : 'not listed in /openapi.json';
    eq(await page.isVisible('#verify-btn'), offered, `verify button visible (probe answered ${probe})`);
    if (offered) {
      await page.click('#verify-btn');
      // One walk of the whole chain: seconds, more on a busy machine.
      await page.waitForFunction(() => {
        const r = document.getElementById('verify-result');
        return !r.hidden && /verify-(ok|bad)/.test(r.className);
      }, null, { timeout: 55_000 });
      const text = ((await page.textContent('#verify-result')) || '').trim();
      assert(/Evidence chain valid/.test(text), `verification result: ${text}`);
    }
    log(`verify endpoint ${offered ? 'offered' : 'not offered'} (${probe})`);
  });

  await runTest('keyboard: a form is filled with Tab and submitted with Enter', async () => {
    const before = await card(page, 'dash-plan-count');
    await page.focus('#plan-slo');
    await page.keyboard.press('Control+A');
    await page.keyboard.type('120');
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => document.activeElement.id);
    assert(/^route-\d+-provider$/.test(focused), `Tab from the SLO field went to "${focused}"`);
    await page.keyboard.press('Control+A');
    await page.keyboard.type('teams');
    await page.keyboard.press('Tab'); // severity
    await page.keyboard.press('Tab'); // reason
    const focused2 = await page.evaluate(() => document.activeElement.id);
    assert(/^route-\d+-reason$/.test(focused2), `second Tab went to "${focused2}"`);
    await page.keyboard.press('Control+A');
    await page.keyboard.type(`keyboard ${nonce}`);
    const res = await submitForm(page, 'form-plan', '/recovery-escalation-plan', () => page.keyboard.press('Enter'));
    expectCreated(res, 'recording a plan from the keyboard');
    eq(res.json.plan.recovery_slo_minutes, 120, 'SLO typed from the keyboard');
    assert(res.json.plan.selected_providers.includes('teams'), 'provider typed from the keyboard');
    eq(res.id, res.json.plan.plan_id, 'plan id shown');
    eq(await card(page, 'dash-plan-count'), before + 1, 'plan count card');
  });

  await runTest('outstanding acknowledgements on top: most urgent first; Acknowledge prefills the form', async () => {
    // A pair of our own at the very top: breached, critical, ten years old.
    const provider = `outstanding-${nonce}`;
    const r = await fetch(`${base}${P}/recovery-escalation-plan`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ generated_by: 'console-test', escalation_routes: [
        { provider, severity: 'critical', slo_breached: true, age_minutes: 5256000, reason: 'browser test' }] }),
    });
    eq(r.status, 201, 'recording the outstanding plan');
    const planId = (await r.json()).plan.plan_id;
    const dash = await refreshDashboard(page);
    const list = dash.outstanding_acknowledgements;
    assert(Array.isArray(list), 'the dashboard has no outstanding_acknowledgements list');
    // The section is the first one of the page.
    const first = await page.$eval('main > section', (n) => n.id);
    eq(first, 'outstanding-section', 'first section of the page');
    const rows = await page.$$eval('#outstanding-body tr.outstanding', (rs) => rs.map((tr) => ({
      plan: tr.dataset.plan, provider: tr.dataset.provider, severity: tr.dataset.severity,
      breached: tr.dataset.breached, age: Number(tr.dataset.age),
      button: !!tr.querySelector('button.ack-row'),
    })));
    eq(rows.length, list.length, 'outstanding rows shown');
    assert(rows.length <= 50, `${rows.length} rows shown (cap 50)`);
    for (let i = 0; i < rows.length; i++) {
      eq(`${rows[i].plan}/${rows[i].provider}`, `${list[i].plan_id}/${list[i].provider}`, `row ${i}`);
      eq(rows[i].severity, list[i].severity, `row ${i} severity`);
      eq(rows[i].breached, String(list[i].slo_breached), `row ${i} SLO breach`);
      assert(rows[i].button, `row ${i} has no Acknowledge button`);
    }
    const countText = ((await page.textContent('#outstanding-count')) || '').replace(/[\s,]/g, '');
    assert(countText.includes(String(dash.outstanding_acknowledgement_count)),
      `the count shown "${countText}" is not ${dash.outstanding_acknowledgement_count}`);
    const mine = rows.findIndex((x) => x.plan === planId && x.provider === provider);
    assert(mine >= 0, 'our breached critical ten-year-old pair is not listed');
    eq(rows[mine].severity, 'critical', 'severity of our row');
    eq(rows[mine].breached, 'true', 'SLO breach of our row');

    // Acknowledge: the form gets the plan and provider, and the focus.
    await page.click(`#outstanding-body tr.outstanding[data-plan="${planId}"] button.ack-row`);
    await waitOption(page, '#ack-provider', provider);
    await page.waitForFunction(([p, v]) => document.getElementById('ack-plan').value === p &&
      document.getElementById('ack-provider').value === v, [planId, provider]);
    await page.waitForFunction(() => document.activeElement && document.activeElement.id === 'ack-by', null,
      { timeout: 10_000 }).catch(() => {});
    eq(await page.evaluate(() => document.activeElement && document.activeElement.id), 'ack-by',
      'focus after Acknowledge');
    eq(await page.inputValue('#ack-reason'), 'recovery SLO breached', 'escalation reason prefilled');
    await page.fill('#ack-by', 'release.manager');
    const res = await submitForm(page, 'form-ack', '/acknowledgements');
    expectCreated(res, 'acknowledging from the outstanding list');
    eq(res.json.acknowledgement.plan_id, planId, 'acknowledged plan');
    eq(res.json.acknowledgement.provider, provider, 'acknowledged provider');
    const gone = await page.$$eval(`#outstanding-body tr.outstanding[data-plan="${planId}"]`, (rs) => rs.length);
    eq(gone, 0, 'the acknowledged pair is still listed');
    const after = await refreshDashboard(page);
    eq(after.outstanding_acknowledgement_count, dash.outstanding_acknowledgement_count - 1, 'outstanding count after');
  });

  await runTest('activity chart: inline SVG of 24 hours from the dashboard counts, no library', async () => {
    const planId = needPlan();
    // One failed delivery and one acknowledgement now: the last hour grows.
    const before = await refreshDashboard(page);
    const post = (sub, body) => fetch(`${base}${P}/recovery-escalations/${planId}/${sub}`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    eq((await post('delivery-attempts', { provider: 'pagerduty', success: false, status_code: 502 })).status, 201, 'failed delivery');
    eq((await post('acknowledgements', { provider: 'pagerduty', acknowledged_by: 'chart', acknowledgement_state: 'acknowledged' })).status, 201, 'acknowledgement');
    const dash = await refreshDashboard(page);
    const hours = dash.hourly_activity;
    assert(Array.isArray(hours) && hours.length === 24, `hourly_activity has ${hours && hours.length} hours`);
    const lastB = before.hourly_activity[23], lastA = hours[23];
    if (lastB.hour_start === lastA.hour_start) {
      eq(lastA.acknowledgement_count - lastB.acknowledgement_count, 1, 'acknowledgements in the last hour');
      eq(lastA.failed_delivery_count - lastB.failed_delivery_count, 1, 'failed deliveries in the last hour');
    }
    const svg = await page.$eval('#activity-chart svg', (n) => ({
      ns: n.namespaceURI, role: n.getAttribute('role'), label: n.getAttribute('aria-labelledby'),
      hours: Array.from(n.querySelectorAll('g.hour')).map((g) => ({
        start: g.dataset.hour,
        acks: Number(g.querySelector('rect.bar-ack').dataset.count),
        failed: Number(g.querySelector('rect.bar-failed').dataset.count),
        ackH: Number(g.querySelector('rect.bar-ack').getAttribute('height')),
        failedH: Number(g.querySelector('rect.bar-failed').getAttribute('height')),
      })),
    }));
    eq(svg.ns, 'http://www.w3.org/2000/svg', 'chart namespace');
    eq(svg.role, 'img', 'chart role');
    assert(svg.label, 'the chart has no accessible name');
    eq(svg.hours.length, 24, 'hour groups in the chart');
    const max = Math.max(1, ...hours.map((h) => Math.max(h.acknowledgement_count, h.failed_delivery_count)));
    for (let i = 0; i < 24; i++) {
      eq(svg.hours[i].start, hours[i].hour_start, `chart hour ${i}`);
      eq(svg.hours[i].acks, hours[i].acknowledgement_count, `acknowledgements at ${hours[i].hour_start}`);
      eq(svg.hours[i].failed, hours[i].failed_delivery_count, `failed deliveries at ${hours[i].hour_start}`);
      // Bar heights scale with the counts (the tallest bar is the maximum).
      for (const [h, n] of [[svg.hours[i].ackH, hours[i].acknowledgement_count], [svg.hours[i].failedH, hours[i].failed_delivery_count]]) {
        assert(n === 0 ? h === 0 : h > 0, `bar of ${n} is ${h} high`);
        if (n === max) assert(Math.abs(h - svg.hours.reduce((m, x) => Math.max(m, x.ackH, x.failedH), 0)) < 0.01, 'the largest count is not the tallest bar');
      }
    }
    const totals = ((await page.textContent('#chart-totals')) || '').replace(/,/g, '');
    const sumA = hours.reduce((a, h) => a + h.acknowledgement_count, 0);
    const sumF = hours.reduce((a, h) => a + h.failed_delivery_count, 0);
    assert(totals.includes(`${sumA} acknowledgement`) && totals.includes(`${sumF} failed`),
      `chart totals "${totals}" (want ${sumA} and ${sumF})`);
    const scripts = await page.$$eval('script', (ss) => ss.map((x) => x.src || 'inline'));
    eq(JSON.stringify(scripts), JSON.stringify([`${base}/console/app.js`]), 'scripts of the page');
    const foreign = requested.filter((u) => !u.startsWith(`${base}/`) && !u.startsWith('data:'));
    eq(foreign.length, 0, `requests outside the gateway (${foreign.join(', ')})`);
  });

  await runTest('axe-core at 1280 and 390 px: no serious or critical violation, unique landmarks', async () => {
    const report = [];
    for (const width of [1280, 390]) {
      await page.setViewportSize({ width, height: width === 390 ? 844 : 900 });
      await loadPage(page, `${base}/`);
      // The report and the outstanding list rendered, as a person sees them.
      await page.waitForFunction(() => document.querySelector('#outstanding-body tr') ||
        !document.getElementById('outstanding-body'));
      const vs = await axeViolations(page);
      log(`axe at ${width} px: ${vs.length ? describeViolations(vs) : 'no violation'}`);
      const bad = vs.filter((v) => v.impact === 'serious' || v.impact === 'critical' || v.id === 'landmark-unique');
      if (bad.length) report.push(`${width} px: ${describeViolations(bad)}`);
    }
    await page.setViewportSize({ width: 1280, height: 900 });
    eq(report.length, 0, `axe violations: ${report.join(' | ')}`);
  });

  await runTest('390 px wide: no horizontal overflow, everything reachable', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await loadPage(page, `${base}/`);
    const widths = await page.evaluate(() => ({ doc: document.documentElement.scrollWidth, body: document.body.scrollWidth }));
    assert(widths.doc <= 390 && widths.body <= 390, `page is ${widths.doc}px (body ${widths.body}px) wide at 390px`);
    for (const form of ['form-plan', 'form-delivery', 'form-ack', 'form-retry', 'form-report']) {
      const box = await page.locator(`#${form}`).boundingBox();
      assert(box && box.x >= 0 && box.x + box.width <= 390, `#${form} does not fit: ${JSON.stringify(box)}`);
    }
    if (state.planId) {
      await page.fill('#filter-plan', state.planId);
      const n = Number((await page.getAttribute('#stream-body', 'data-loads')) || 0);
      await page.click('#filter-apply');
      await page.waitForFunction((m) => Number(document.getElementById('stream-body').dataset.loads || 0) > m, n);
      const t = Number((await page.getAttribute('#trace-list', 'data-loads')) || 0);
      await page.locator(`#stream-body .trace-link[data-plan="${state.planId}"]`).first().click();
      await page.waitForFunction((m) => Number(document.getElementById('trace-list').dataset.loads || 0) > m, t);
      const w2 = await page.evaluate(() => document.documentElement.scrollWidth);
      assert(w2 <= 390, `page is ${w2}px wide at 390px with the trace open`);
    }
    await page.screenshot({ path: path.join(shotDir, 'console-390.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  await runTest('bearer token: kept in sessionStorage, sent on every call; 401/403 shown plainly', async () => {
    if (gw2Error) throw new AssertionError(`the gateway with a token file did not start: ${gw2Error}`);
    const ctx2 = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    try {
      const p2 = await ctx2.newPage();
      p2.setDefaultTimeout(15_000);
      const auth = [];
      p2.on('request', (r) => {
        if (r.url().includes('/runtime/')) auth.push(r.headers().authorization || null);
      });
      await loadPage(p2, `${base2}/`);
      assert(await p2.isVisible('#auth-banner'), 'no banner for 401 without a token');
      const banner = ((await p2.textContent('#auth-banner')) || '').trim();
      assert(banner.includes('401'), `banner without a token: "${banner}"`);

      auth.length = 0;
      const r0 = await refreshedCount(p2);
      await p2.fill('#token', TOKENS.auditor);
      await p2.click('#token-save');
      await waitRefreshed(p2, r0);
      assert(auth.length > 0, 'no API call after setting the token');
      assert(auth.every((h) => h === `Bearer ${TOKENS.auditor}`), `calls without the bearer token: ${JSON.stringify(auth.slice(0, 3))}`);
      eq(await p2.evaluate(() => sessionStorage.getItem('cavra.console.token')), TOKENS.auditor, 'token in sessionStorage');
      eq(await p2.evaluate((t) => Object.keys(localStorage).some((k) => localStorage.getItem(k) === t), TOKENS.auditor),
        false, 'token in localStorage');
      assert(await p2.isHidden('#auth-banner'), 'the 401 banner stays after a valid token');

      // An auditor may read but not record a plan: 403, shown plainly.
      await p2.locator('#plan-routes .route [data-name=provider]').first().fill('slack');
      const res = await submitForm(p2, 'form-plan', '/recovery-escalation-plan');
      assert(!res.ok, 'an auditor recorded a plan');
      eq(res.status, 403, 'HTTP status for an auditor recording a plan');
      assert(res.text.includes('403') && res.text.includes(res.json.detail), `the form shows "${res.text}"`);
      const banner403 = ((await p2.textContent('#auth-banner')) || '').trim();
      assert(await p2.isVisible('#auth-banner') && banner403.includes('403'), `banner after 403: "${banner403}"`);

      // The token survives a reload of the tab (sessionStorage).
      await loadPage(p2, `${base2}/`);
      eq(await p2.inputValue('#token'), TOKENS.auditor, 'token field after a reload');
    } finally {
      await ctx2.close();
    }
  });

  if (pageErrors.length) log(`page errors: ${pageErrors.join('; ')}`);
}

let overall = null;
function armOverallLimit() {
  // ctest ends the test at 300 s from its start (with SIGKILL, which leaves
  // no chance to stop the stack): stop well before that, however long the
  // set-up took, but give the tests at least a minute.
  const left = Math.max(60_000, 285_000 - (Date.now() - STARTED_AT));
  const limit = Math.min(OVERALL_LIMIT_MS, left);
  overall = setTimeout(() => {
    aborted = true;
    results.failed++;
    console.log(`not ok - overall: the browser tests ran past ${limit} ms`);
    console.log(`${results.passed} passed, ${results.failed} failed`);
    printLogs();
    cleanup().finally(() => process.exit(1));
  }, limit);
}

let exitCode = 0;
try {
  await main();
} catch (e) {
  if (aborted) await new Promise(() => {}); // the time limit handler exits
  results.failed++;
  console.log(`not ok - set-up: ${String(e && e.message ? e.message : e).split('\n')[0]}`);
  if (e && e.stack) log(e.stack);
}
if (aborted) await new Promise(() => {}); // the time limit handler exits
if (results.failed > 0) printLogs();
await cleanup();
if (overall) clearTimeout(overall);
console.log(`${results.passed} passed, ${results.failed} failed`);
exitCode = results.failed > 0 || results.passed === 0 ? 1 : 0;
process.exit(exitCode);
