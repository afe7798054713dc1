// Points Locust's own web UI (its built page from the locust 2.47.0 wheel, which
// scripts/test unpacks into tests/browser/locust-webui) at our Locust web API, in
// headless Chromium, and reads the statistics table it renders from our
// /stats/requests. The page is served by request interception: Locust's index.html
// (with the template arguments its Flask view would fill in) and assets from the
// wheel, every other request forwarded to our server.
//
// usage: node locust_ui.mjs API_ORIGIN   (e.g. http://127.0.0.1:8089)
// Prints one JSON line: {ok, headers, rows: [[cells...]...], console_errors}.
import { chromium } from "playwright-core";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import path from "node:path";

const api = process.argv[2];
const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(here, "locust-webui/locust/webui/dist");
const origin = "http://locust.test";
const templateArgs = {
  locustfile: "loaddensity", state: "stopped", is_distributed: false, user_count: 0,
  version: "2.47.0", host: "", history: [], override_host_warning: false,
  missing_host_warning: false, num_users: 1, spawn_rate: 1, worker_count: 0,
  hide_common_options: false, shape_use_common_options: false, stats_history_enabled: false,
  tasks: "{}", extra_options: {}, run_time: null, show_userclass_picker: false,
  available_user_classes: null, available_shape_classes: ["Default"], available_user_tasks: null,
  users: null, percentiles_to_chart: [0.5, 0.95], percentiles_to_statistics: [0.95, 0.99],
  is_host_required: false, profile: null,
};
const seen = { console_errors: [], forwarded: [] };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  page.on("console", (m) => { if (m.type() === "error") seen.console_errors.push(m.text()); });
  page.on("pageerror", (e) => seen.console_errors.push(String(e)));
  await page.route(`${origin}/**`, async (route) => {
    const url = new URL(route.request().url());
    if (url.pathname === "/") {
      const html = (await readFile(path.join(dist, "index.html"), "utf8"))
        .replace("{{ template_args|tojson }}", JSON.stringify(templateArgs));
      return route.fulfill({ status: 200, contentType: "text/html", body: html });
    }
    if (url.pathname.startsWith("/assets/")) {
      const file = path.join(dist, url.pathname);
      const type = file.endsWith(".js") ? "text/javascript" : file.endsWith(".png") ? "image/png" : "application/octet-stream";
      return route.fulfill({ status: 200, contentType: type, body: await readFile(file) });
    }
    seen.forwarded.push(url.pathname);
    const response = await route.fetch({ url: api + url.pathname + url.search });
    return route.fulfill({ response });
  });
  await page.goto(`${origin}/`);
  // The statistics table, once it holds the Aggregated row.
  await page.waitForFunction(() => [...document.querySelectorAll("table tr")].some((r) => r.textContent.includes("Aggregated")), null, { timeout: 20000 });
  const table = await page.evaluate(() => {
    const t = [...document.querySelectorAll("table")].find((t) => t.textContent.includes("Aggregated"));
    const headers = [...t.querySelectorAll("thead th")].map((c) => c.textContent.trim());
    const rows = [...t.querySelectorAll("tbody tr")].map((r) => [...r.querySelectorAll("td")].map((c) => c.textContent.trim()));
    return { headers, rows };
  });
  console.log(JSON.stringify({ ok: true, ...table, ...seen }));
} catch (error) {
  console.log(JSON.stringify({ ok: false, error: String(error), ...seen }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
