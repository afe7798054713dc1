// Keeps the web UI open in headless Chromium (its event stream connected) for
// SECONDS, or until killed: the "page open" side of bench/web_ui.sh. Prints "open"
// once the event stream is connected, and at the end how many snapshots the page
// rendered and the last request count it showed (the proof that it stayed live).
//
// usage: node hold_page.mjs URL SECONDS
import { chromium } from "playwright-core";

const [url, seconds] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu"],
  // This script closes the browser itself, after reading the page.
  handleSIGTERM: false,
  handleSIGINT: false,
});
let page;
const stop = async () => {
  if (page) {
    const seen = await page.evaluate(() => [window.__renders || 0, document.body.dataset.requests || "0"]).catch(() => [0, "0"]);
    console.log(`rendered ${seen[0]} requests ${seen[1]}`);
  }
  await browser.close();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
await page.goto(url);
await page.waitForFunction(() => document.getElementById("connection").textContent === "live", null, { timeout: 15000 });
// Count the snapshots rendered (render() sets data-requests on each one).
await page.evaluate(() => {
  window.__renders = 0;
  new MutationObserver(() => { window.__renders += 1; })
    .observe(document.body, { attributes: true, attributeFilter: ["data-requests"] });
});
console.log("open");
await new Promise((resolve) => setTimeout(resolve, Number(seconds) * 1000));
await stop();
