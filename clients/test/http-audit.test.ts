// The GraphQL over HTTP specification's own audit suite (the npm package graphql-http,
// `serverAudits`) against a live orgql: API.md promises that every MUST, SHOULD and MAY is
// met, so any audit that is not `ok` fails this test ('warn' for a SHOULD and 'notice' for a
// MAY included). Prints one line per audit and a summary line.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { serverAudits, type AuditResult } from "graphql-http";

import { startOrgql, type Orgql } from "./orgql.ts";

let server: Orgql;

before(async () => {
  server = await startOrgql();
});

after(async () => {
  await server?.stop();
});

test("orgql meets every GraphQL over HTTP audit (MUST, SHOULD and MAY)", async () => {
  const audits = serverAudits({ url: `${server.base}/graphql`, fetchFn: fetch });
  const failed: string[] = [];
  // One at a time, so the printed lines follow the suite's order.
  for (const audit of audits) {
    const result: AuditResult = await audit.fn();
    if (result.status === "ok") {
      console.log(`ok      ${result.id} ${result.name}`);
      continue;
    }
    const line = `${result.status.padEnd(7)} ${result.id} ${result.name}: ${result.reason}`;
    console.log(line);
    console.log(`          got ${await summarize(result.response)}`);
    failed.push(line);
  }
  console.log(`graphql-http audits: ${audits.length - failed.length} of ${audits.length} met`);
  assert.ok(
    failed.length === 0,
    `${failed.length} GraphQL over HTTP audit(s) not met:\n${failed.join("\n")}`,
  );
});

/** The status, content type and (start of the) body of a failing audit's response. */
async function summarize(response: Response): Promise<string> {
  let body: string;
  try {
    // The audit may have read the body already; then there is nothing more to show.
    body = (await response.clone().text()).replace(/\s+/g, " ").slice(0, 300);
  } catch {
    body = "(body already read)";
  }
  return `${response.status} ${response.headers.get("content-type") ?? "(no content-type)"} ${body}`;
}
