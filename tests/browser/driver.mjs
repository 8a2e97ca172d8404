// Drives Debian's Chromium (/usr/bin/chromium) for tests/browser.rs with
// playwright-core; no browser is downloaded.
//
//   node tests/browser/driver.mjs PROFILE_DIR
//
// Reads one JSON command a line on stdin and answers each with one JSON line
// on stdout: {"ok":true,"value":...} or {"ok":false,"error":"..."}. Closing
// stdin closes the browser and ends the process. Nothing leaves the machine:
// requests to anything but 127.0.0.1 are aborted, except images, which get
// a 1200x400 placeholder so that "images scale down" has images to measure,
// or, for `.../assets/NAME` when the email op names an `assets` folder, the
// file NAME from it (what `newsletter web build` publishes).
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";

import { chromium } from "playwright-core";

const profile = process.argv[2];
if (!profile) {
  process.stderr.write("usage: driver.mjs PROFILE_DIR\n");
  process.exit(2);
}

// As root, and without these, Chromium refuses to start or tries the network.
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

const PLACEHOLDER = `<svg xmlns="http://www.w3.org/2000/svg" width="1200" height="400" viewBox="0 0 1200 400">
<rect width="1200" height="400" fill="#c9d7e8"/><path d="M0 400 L400 120 L700 330 L900 200 L1200 400Z" fill="#7d95b5"/>
<text x="600" y="80" font-size="48" text-anchor="middle" font-family="sans-serif">1200 x 400 test image</text></svg>`;

const context = await chromium.launchPersistentContext(profile, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ARGS,
  viewport: { width: 1280, height: 900 },
  timeout: 60_000,
});
context.setDefaultTimeout(15_000);
// The folder the email's hosted images are served from, if any.
let assets = null;
const TYPES = { ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif" };

await context.route("**/*", (route) => {
  const request = route.request();
  const url = new URL(request.url());
  if (url.hostname === "127.0.0.1" || url.hostname === "localhost") {
    return route.continue();
  }
  const asset = assets && /\/assets\/([^/]+)$/.exec(url.pathname);
  if (asset && fs.existsSync(path.join(assets, asset[1]))) {
    const file = path.join(assets, asset[1]);
    const contentType = TYPES[path.extname(file).toLowerCase()] ?? "application/octet-stream";
    return route.fulfill({ status: 200, contentType, body: fs.readFileSync(file) });
  }
  if (request.resourceType() === "image") {
    return route.fulfill({ status: 200, contentType: "image/svg+xml", body: PLACEHOLDER });
  }
  return route.abort();
});

let page = context.pages()[0] ?? (await context.newPage());

/// The page, or the document of the frame `selector` names in it.
async function target(selector) {
  if (!selector) return page;
  const element = await page.waitForSelector(selector, { state: "attached", timeout: 5000 });
  const frame = await element.contentFrame();
  if (!frame) throw new Error(`${selector} is not a frame`);
  return frame;
}

const ops = {
  // A fresh tab of the given size and colour scheme.
  async open({ width = 1280, height = 900, scheme = "light", url }) {
    await page.close();
    page = await context.newPage();
    await page.setViewportSize({ width, height });
    await page.emulateMedia({ colorScheme: scheme });
    if (url) await page.goto(url, { waitUntil: "load" });
    return null;
  },

  // The email in a `srcdoc` iframe #email exactly `width` px wide, made as
  // tall as its content so that no scroll bar narrows it.
  async email({ html, width, scheme = "light", assets: folder = null }) {
    assets = folder;
    await ops.open({ width: width + 40, height: 900, scheme });
    await page.setContent('<!doctype html><html><body style="margin:0"></body></html>');
    await page.evaluate(
      ({ html, width }) =>
        new Promise((resolve) => {
          const frame = document.createElement("iframe");
          frame.id = "email";
          frame.style.cssText = `display:block;border:0;width:${width}px;height:600px`;
          frame.onload = () => resolve();
          frame.srcdoc = html;
          document.body.append(frame);
        }),
      { html, width },
    );
    const frame = await target("#email");
    await frame.evaluate(() =>
      Promise.all(
        [...document.images].map((img) =>
          img.complete ? null : new Promise((r) => img.addEventListener("load", r, { once: true })),
        ),
      ),
    );
    await page.evaluate(() => {
      const frame = document.getElementById("email");
      frame.style.height = `${frame.contentDocument.documentElement.scrollHeight}px`;
    });
    return null;
  },

  // Evaluates a JavaScript expression (in the frame `frame`, if given).
  // A live-reloading page may be between documents when asked: then the
  // question is asked again of the new one (a few times, for 5 s at most).
  async eval({ js, frame }) {
    const started = Date.now();
    for (;;) {
      try {
        return await (await target(frame)).evaluate(js);
      } catch (error) {
        const reloading = /context was destroyed|navigat|detached/i.test(String(error));
        if (!reloading || Date.now() - started > 5000) throw error;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  },

  // Waits until a JavaScript expression is truthy, across reloads of the
  // page; answers the milliseconds it took, fails after `timeout` ms.
  async wait({ js, frame, timeout = 3000 }) {
    const started = Date.now();
    let last = "it stayed false";
    while (Date.now() - started < timeout) {
      try {
        if (await (await target(frame)).evaluate(js)) return Date.now() - started;
      } catch (error) {
        last = String(error); // the page was reloading
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`not true after ${timeout} ms: ${js} (${last})`);
  },

  // Chooses an option of a <select> whose change navigates; waits for the load.
  async select({ selector, value }) {
    await Promise.all([page.waitForNavigation({ waitUntil: "load" }), page.selectOption(selector, value)]);
    return page.url();
  },

  // The accessibility tree of `selector` (in the frame `frame`) as
  // Chromium computes it, in Playwright's ARIA snapshot form: every link
  // with its accessible name, for instance.
  async aria({ selector = "body", frame }) {
    return await (await target(frame)).locator(selector).first().ariaSnapshot();
  },

  async screenshot({ path, selector, fullPage = true }) {
    if (selector) await page.locator(selector).screenshot({ path });
    else await page.screenshot({ path, fullPage });
    return path;
  },

  // Reloads the page as live reload does; waits for its load event.
  async reload() {
    await page.reload({ waitUntil: "load" });
    return page.url();
  },

  url() {
    return page.url();
  },
};

const lines = readline.createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  let answer;
  try {
    const command = JSON.parse(line);
    const op = ops[command.op];
    if (!op) throw new Error(`unknown op ${command.op}`);
    answer = { ok: true, value: (await op(command)) ?? null };
  } catch (error) {
    answer = { ok: false, error: String(error && error.stack ? error.stack : error) };
  }
  process.stdout.write(`${JSON.stringify(answer)}\n`);
}
await context.close();
process.exit(0);
