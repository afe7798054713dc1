// Keeps the web UI open in headless Chromium (its event stream connected) for
// SECONDS, or until killed: the "page open" side of bench/web_ui.sh.
//
// usage: node hold_page.mjs URL SECONDS
import { chromium } from "playwright-core";

const [url, seconds] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu"],
});
const stop = async () => { await browser.close(); process.exit(0); };
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
await page.goto(url);
await page.waitForFunction(() => document.getElementById("connection").textContent === "live", null, { timeout: 15000 });
console.log("open");
await page.waitForTimeout(Number(seconds) * 1000);
await stop();
