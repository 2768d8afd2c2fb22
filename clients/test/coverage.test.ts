// Every query, mutation and subscription of the schema has an operation in src/operations.
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import { Kind, buildSchema, parse } from "graphql";

const root = join(import.meta.dirname, "..");

test("the operations cover every root field of the schema", () => {
  const schema = buildSchema(readFileSync(join(root, "../schema.graphql"), "utf8"));
  const folder = join(root, "src/operations");
  const used = new Set<string>();
  for (const file of readdirSync(folder).filter((f) => f.endsWith(".graphql"))) {
    const document = parse(readFileSync(join(folder, file), "utf8"));
    for (const definition of document.definitions) {
      if (definition.kind !== Kind.OPERATION_DEFINITION) continue;
      const prefix = { query: "Query", mutation: "Mutation", subscription: "Subscription" }[definition.operation];
      for (const selection of definition.selectionSet.selections) {
        if (selection.kind === Kind.FIELD) used.add(`${prefix}.${selection.name.value}`);
      }
    }
  }
  const wanted = [
    ...Object.keys(schema.getQueryType()?.getFields() ?? {}).map((f) => `Query.${f}`),
    ...Object.keys(schema.getMutationType()?.getFields() ?? {}).map((f) => `Mutation.${f}`),
    ...Object.keys(schema.getSubscriptionType()?.getFields() ?? {}).map((f) => `Subscription.${f}`),
  ];
  assert.ok(wanted.length >= 22, "the schema has the contract's operations");
  assert.deepEqual(
    wanted.filter((field) => !used.has(field)),
    [],
    "root fields without an operation in src/operations",
  );
});
