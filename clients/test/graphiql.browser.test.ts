// GraphiQL as a person uses it: headless Chromium opens the offline GraphiQL of a live
// orgql, pastes an Authorization header into the Headers pane, runs `{ viewer { username } }`
// and sees the answer, then runs a subscription and sees an event arrive; nothing is loaded
// from outside the server. Saves a screenshot to
// artifacts/graphiql.png.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { chromium, type BrowserContext } from "playwright-core";

import { AddMemberDocument, CreateOrganizationDocument, SignUpDocument, mutate, orgqlClient } from "../src/client.ts";
import { startOrgql, type Orgql } from "./orgql.ts";

const executablePath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const artifacts = join(import.meta.dirname, "../artifacts");

/** A CodeMirror 5 editor's element, which keeps its instance. */
interface CodeMirrorElement {
  CodeMirror: { getValue(): string };
}

let server: Orgql;
let context: BrowserContext;
let profile: string;

before(async () => {
  server = await startOrgql();
  profile = mkdtempSync(join(tmpdir(), "orgql-chromium-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    viewport: { width: 1400, height: 900 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
});

after(async () => {
  await context?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  await server?.stop();
});

test("GraphiQL runs an authenticated query offline", async () => {
  const { signUp } = await mutate(orgqlClient(server.endpoint), SignUpDocument, {
    input: { username: "grace", email: "grace@example.com", password: "correct horse battery" },
  });

  const html = await (await fetch(`${server.base}/`)).text();
  assert.ok(
    html.includes("/graphiql/graphiql.min.js"),
    "orgql's GraphiQL page does not load its embedded assets (graphiql/vendor/, build.rs)",
  );

  const page = await context.newPage();
  const origin = new URL(server.base).origin;
  const remote: string[] = [];
  const problems: string[] = [];
  // Offline means offline: any request that leaves the server is recorded and refused.
  await page.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith(origin) || url.startsWith("data:")) return route.continue();
    remote.push(url);
    return route.abort();
  });
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console error: ${message.text()}`);
  });

  await page.goto(`${server.base}/`);
  await page.locator(".graphiql-container").waitFor({ timeout: 30_000 });

  // The Headers pane is open by default; paste the header into it as a user would.
  await page.getByRole("button", { name: "Headers", exact: true }).click();
  const headers = page.locator(".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror");
  await headers.click();
  await page.keyboard.press("ControlOrMeta+A");
  await page.keyboard.insertText(JSON.stringify({ Authorization: `Bearer ${signUp.token}` }, null, 2));
  await page.keyboard.press("ControlOrMeta+Home");

  // The query.
  const query = page.locator(".graphiql-query-editor .CodeMirror");
  await query.click();
  await page.keyboard.press("ControlOrMeta+A");
  await page.keyboard.insertText("{ viewer { username } }");

  // The editors hold what was pasted (CodeMirror 5 keeps its instance on the element).
  // (Inline callbacks only: tsx names named functions with a helper the page lacks.)
  const values = {
    headers: await headers.evaluate((el) => (el as unknown as CodeMirrorElement).CodeMirror.getValue()),
    query: await query.evaluate((el) => (el as unknown as CodeMirrorElement).CodeMirror.getValue()),
  };
  assert.equal(values.query, "{ viewer { username } }");
  assert.deepEqual(JSON.parse(values.headers ?? "null"), { Authorization: `Bearer ${signUp.token}` });

  await page.locator(".graphiql-execute-button").click();
  const result = page.locator(".result-window");
  await result.getByText('"username": "grace"').waitFor({ timeout: 15_000 });
  const shown = await result.innerText();
  assert.match(shown, /"viewer"/);
  assert.match(shown, /"username": "grace"/);
  assert.doesNotMatch(shown, /UNAUTHENTICATED/);

  // The docs explorer.
  await page.getByRole("button", { name: /Show Documentation Explorer/ }).click();
  await page.locator(".graphiql-doc-explorer").getByText("Root Types").waitFor();

  // A live subscription (over SSE, /graphql/stream): an admin adds grace to an
  // organization elsewhere, and the event appears in the result pane.
  await query.click();
  await page.keyboard.press("ControlOrMeta+A");
  await page.keyboard.insertText("subscription Mine { viewerEvents { action subjectUsername organization { username } } }");
  await page.locator(".graphiql-execute-button").click();
  await page.waitForTimeout(1000);
  const admin = await mutate(orgqlClient(server.endpoint), SignUpDocument, {
    input: { username: "ada", email: "ada@example.com", password: "correct horse battery" },
  });
  const adminClient = orgqlClient(server.endpoint, admin.signUp.token);
  await mutate(adminClient, CreateOrganizationDocument, { input: { username: "hopper-lab" } });
  await mutate(adminClient, AddMemberDocument, { input: { organization: "hopper-lab", username: "grace" } });
  await result.getByText('"action": "MEMBER_ADDED"').waitFor({ timeout: 15_000 });
  assert.match(await result.innerText(), /"username": "hopper-lab"/);

  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, "graphiql.png") });

  assert.deepEqual(remote, [], "GraphiQL requested something outside orgql");
  assert.deepEqual(problems, []);
});
