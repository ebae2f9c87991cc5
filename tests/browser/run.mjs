// Plays streams in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core)
// with Shaka Player and hls.js against a running Tessera, and reports what happened as one
// JSON object on stdout. tests/it/browser.rs prepares the media and decides pass or fail.
//
//   node run.mjs CONFIG.json      run the scenarios of CONFIG, print the report
//   node run.mjs --serve DIR      only serve the page and DIR on 127.0.0.1 (the demo)
//
// CONFIG: {"media": DIR, "scenarios": [{"name", "kind": "dash"|"hls", "manifest": path under
// DIR, "license", "token", "auth": "header"|"query", "reference": path of a clear stream to
// compare a frame with, "frame_at": seconds, "reference_at": seconds (default frame_at)}]}.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { PNG } from 'pngjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.mpd': 'application/dash+xml',
  '.m3u8': 'application/vnd.apple.mpegurl', '.mp4': 'video/mp4', '.m4s': 'video/iso.segment',
  '.ts': 'video/mp2t' };

// A static server for the page, the two players and the media; loopback only.
function serve(mediaDir, port = 0) {
  const roots = {
    '/page/': path.join(here, 'page'),
    '/lib/shaka-player.compiled.js': path.join(here, 'node_modules/shaka-player/dist/shaka-player.compiled.js'),
    '/lib/hls.min.js': path.join(here, 'node_modules/hls.js/dist/hls.min.js'),
    '/media/': mediaDir,
  };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    for (const [prefix, target] of Object.entries(roots)) {
      if (!url.pathname.startsWith(prefix)) continue;
      let file = target;
      if (prefix.endsWith('/')) {
        file = path.join(target, decodeURIComponent(url.pathname.slice(prefix.length)));
        if (!file.startsWith(target)) break; // no escaping the root
      }
      fs.readFile(file, (err, data) => {
        if (err) { res.writeHead(404); res.end(); return; }
        res.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] || 'application/octet-stream' });
        res.end(data);
      });
      return;
    }
    res.writeHead(404);
    res.end();
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}

// The browser: no network beyond loopback, no background traffic, a fresh profile.
async function launch() {
  const profile = fs.mkdtempSync(path.join(process.env.TMPDIR || '/tmp', 'tessera-chromium-'));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--autoplay-policy=no-user-gesture-required',
      '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost'],
    viewport: { width: 800, height: 600 },
  });
  return { browser, profile };
}

// Standard deviation of a screenshot's luma: a test pattern is far from 0, a blank frame is 0.
function contrast(png) {
  const p = PNG.sync.read(png);
  let n = 0, sum = 0, sq = 0;
  for (let i = 0; i < p.data.length; i += 4) {
    const y = 0.299 * p.data[i] + 0.587 * p.data[i + 1] + 0.114 * p.data[i + 2];
    n += 1; sum += y; sq += y * y;
  }
  const mean = sum / n;
  return Math.sqrt(Math.max(0, sq / n - mean * mean));
}

// Mean absolute difference of two PNG screenshots, per channel value (0..255).
function difference(a, b) {
  const pa = PNG.sync.read(a), pb = PNG.sync.read(b);
  if (pa.width !== pb.width || pa.height !== pb.height) return 255;
  let sum = 0;
  for (let i = 0; i < pa.data.length; i += 4) {
    sum += Math.abs(pa.data[i] - pb.data[i]) + Math.abs(pa.data[i + 1] - pb.data[i + 1])
      + Math.abs(pa.data[i + 2] - pb.data[i + 2]);
  }
  return sum / (pa.width * pa.height * 3);
}

async function frameOf(context, base, scenario, at) {
  const page = await context.newPage();
  const requests = [];
  page.on('response', (r) => {
    const u = r.url();
    if (u.includes('/clearkey/license') || u.includes('/hls/key/')) {
      requests.push({ url: u.replace(/token=[^&]*/, 'token=…'), status: r.status() });
    }
  });
  const console_ = [];
  page.on('console', (m) => { if (m.type() === 'error') console_.push(m.text()); });
  await page.goto(`${base}/page/player.html`);
  const s = { ...scenario, manifest: `${base}/media/${scenario.manifest}` };
  const deadline = (scenario.deadline_ms || 25000);
  let result;
  try {
    const outcome = await Promise.race([
      page.evaluate((s) => window.tessera.play(s).then((r) => ({ played: r }), (e) => ({ error: e })), s),
      new Promise((r) => setTimeout(() => r({ timeout: true }), deadline).unref()),
    ]);
    result = outcome;
    if (outcome.played && at !== undefined) {
      result.shown_at = await page.evaluate((t) => window.tessera.showFrame(t), at);
      result.png = await page.locator('video').screenshot();
    }
  } catch (e) {
    result = { error: { message: String(e) } };
  }
  result.requests = requests;
  result.console_errors = console_.slice(0, 5);
  await page.close();
  return result;
}

async function main() {
  if (process.argv[2] === '--serve') {
    const server = await serve(path.resolve(process.argv[3]), Number(process.env.PORT || 8090));
    console.log(`serving on http://127.0.0.1:${server.address().port}/page/player.html`);
    return;
  }
  const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const server = await serve(path.resolve(config.media));
  const base = `http://127.0.0.1:${server.address().port}`;
  const { browser, profile } = await launch();
  const report = { origin: base, scenarios: {} };
  try {
    for (const s of config.scenarios) {
      const started = Date.now();
      const r = await frameOf(browser, base, s, s.reference ? (s.frame_at || 2.0) : undefined);
      if (r.png && s.reference) {
        const ref = await frameOf(browser, base, { ...s, manifest: s.reference, token: null,
          kind: s.reference_kind || s.kind }, s.reference_at ?? (s.frame_at || 2.0));
        r.reference_shown_at = ref.shown_at;
        r.difference = ref.png ? difference(r.png, ref.png) : null;
        r.contrast = contrast(r.png);
        r.reference_error = ref.error || (ref.timeout ? 'timeout' : undefined);
      }
      delete r.png;
      r.ms = Date.now() - started;
      report.scenarios[s.name] = r;
    }
  } finally {
    await browser.close();
    server.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
  process.stdout.write(JSON.stringify(report) + '\n');
}

main().catch((e) => { console.error(e); process.exit(3); });
