// Drives the web UI in headless Chromium (Debian's, through playwright-core) during a
// real test: the request count rises, the charts draw, the user count follows the
// form, Stop stops the test, Start again (after the script) runs it again, the page
// fits a narrow window, and the console stays clean. Prints one JSON line with what it saw; exits 1 on the first failed check.
//
// usage: node web_ui.mjs URL SCREENSHOT.png
import { chromium } from "playwright-core";

const [url, screenshot] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const seen = { console_errors: [] };

function check(condition, message) {
  if (!condition) throw new Error(message);
}

const browser = await chromium.launch({ executablePath, args: ["--no-sandbox", "--disable-gpu"] });
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  page.on("console", (m) => { if (m.type() === "error") seen.console_errors.push(m.text()); });
  page.on("pageerror", (e) => seen.console_errors.push(String(e)));
  await page.goto(url);
  const requests = () => page.evaluate(() => Number(document.body.dataset.requests || 0));
  await page.waitForFunction(() => Number(document.body.dataset.requests || 0) > 0, null, { timeout: 15000 });
  seen.requests_first = await requests();
  await page.waitForTimeout(2500);
  seen.requests_later = await requests();
  check(seen.requests_later > seen.requests_first, `the request count did not rise: ${seen.requests_first} then ${seen.requests_later}`);

  // The charts: each draws at least one line of several points.
  await page.waitForFunction(() => document.querySelectorAll("#chart-rps path.series").length > 0, null, { timeout: 10000 });
  seen.chart_points = await page.evaluate(() =>
    [...document.querySelectorAll("svg.chart")].map((svg) => {
      const path = svg.querySelector("path.series");
      return path ? (path.getAttribute("d").match(/[ML]/g) || []).length : 0;
    }));
  check(seen.chart_points.every((n) => n >= 2), `a chart did not draw: ${seen.chart_points}`);
  seen.table_rows = await page.locator("#stats tbody tr").count();
  check(seen.table_rows >= 2, "the statistics table is empty");

  // Change the user count: the active users follow.
  await page.fill("#user_count", "5");
  await page.fill("#spawn_rate", "50");
  await page.click("#apply");
  await page.waitForFunction(() => document.body.dataset.users === "5", null, { timeout: 15000 });
  seen.users = 5;
  await page.waitForTimeout(1500);
  await page.screenshot({ path: screenshot, fullPage: true });

  // A narrow window: nothing wider than the screen (tables scroll in their panel).
  await page.setViewportSize({ width: 380, height: 900 });
  await page.waitForTimeout(300);
  seen.narrow_scroll_width = await page.evaluate(() => document.documentElement.scrollWidth);
  check(seen.narrow_scroll_width <= 381, `the page is ${seen.narrow_scroll_width}px wide in a 380px window`);
  await page.screenshot({ path: screenshot.replace(/\.png$/, "-narrow.png"), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 1000 });

  // Stop: the test stops.
  await page.click("#stop");
  await page.waitForFunction(() => document.body.dataset.state === "stopped", null, { timeout: 20000 });
  seen.state = "stopped";

  // After the script: Start again runs its test again with the users entered.
  await page.waitForFunction(() => {
    const apply = document.getElementById("apply");
    return apply.textContent === "Start again" && !apply.disabled;
  }, null, { timeout: 15000 });
  await page.fill("#user_count", "3");
  await page.fill("#spawn_rate", "50");
  await page.click("#apply");
  await page.waitForFunction(() => document.body.dataset.state === "running" && document.body.dataset.users === "3", null, { timeout: 15000 });
  seen.restarted_users = 3;
  await page.click("#stop");
  await page.waitForFunction(() => document.body.dataset.state === "stopped", null, { timeout: 20000 });
  check(seen.console_errors.length === 0, `console errors: ${seen.console_errors.join(" | ")}`);
  console.log(JSON.stringify({ ok: true, ...seen }));
} catch (error) {
  console.log(JSON.stringify({ ok: false, error: String(error), ...seen }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
