// Seeds a running orgql through its own GraphQL API (no dependencies; Node >= 20).
//
//   node bench/seed/seed.mjs http://127.0.0.1:PORT/graphql
//
// Creates (API.md's rules apply: argon2 on signUp, fan-out on createDataset):
// - the user `bench` (the viewer of the benchmark), admin of `org-01` … `org-20`;
// - 980 users `user-0001` … `user-0980`, 49 per organization, so each organization has 50
//   members; every 10th is an ADMIN; default dataset roles cycle through
//   null, VIEWER, LABELER, REVIEWER, MANAGER;
// - 20 datasets per organization, `dataset-01` … `dataset-20` (every other one public), so the
//   fan-out adds the creator plus the members with a default role as collaborators;
// - the user `bench-keyset` and its organizations `keyset-small` and `keyset-large` (their
//   bulk members are inserted with SQL afterwards: bench/seed/keyset-*.sql).
// Prints one JSON line: {"benchToken": …, "keysetToken": …, counts}.

import { SHAPE, PASSWORD } from "./shape.mjs";

const url = process.argv[2];
if (!url) {
  console.error("usage: node seed.mjs http://127.0.0.1:PORT/graphql");
  process.exit(2);
}
const CONCURRENCY = Number(process.env.SEED_CONCURRENCY || 6);

async function gql(query, variables, token) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(url, { method: "POST", headers, body: JSON.stringify({ query, variables }) });
    const text = await res.text();
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      throw new Error(`HTTP ${res.status}: ${text.slice(0, 300)}`);
    }
    if (body.errors) {
      const code = body.errors[0]?.extensions?.code;
      if (code === "RATE_LIMITED" && attempt < 20) {
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      throw new Error(`${JSON.stringify(body.errors)} for ${JSON.stringify(variables)}`);
    }
    return body.data;
  }
}

async function pool(items, fn) {
  let next = 0;
  const workers = Array.from({ length: Math.min(CONCURRENCY, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++];
      await fn(item);
    }
  });
  await Promise.all(workers);
}

const SIGN_UP = `mutation($input: SignUpInput!) { signUp(input: $input) { token user { id } } }`;
const CREATE_ORG = `mutation($input: CreateOrganizationInput!) { createOrganization(input: $input) { organization { id } } }`;
const ADD_MEMBER = `mutation($input: AddMemberInput!) { addMember(input: $input) { member { role } } }`;
const CREATE_DATASET = `mutation($input: CreateDatasetInput!) { createDataset(input: $input) { dataset { id collaborators(first: 0) { totalCount } } } }`;

const signUp = async (username) =>
  (await gql(SIGN_UP, { input: { username, email: `${username}@bench.example`, password: PASSWORD } })).signUp.token;

const t0 = Date.now();
const benchToken = await signUp(SHAPE.viewer);
const keysetToken = await signUp(SHAPE.keysetAdmin);

const users = SHAPE.users();
await pool(users, (u) => signUp(u));
const tUsers = Date.now();

const orgs = SHAPE.organizations();
await pool(orgs, (org) =>
  gql(CREATE_ORG, { input: { username: org, displayName: `Organization ${org}` } }, benchToken),
);
const memberships = SHAPE.memberships(); // [{organization, username, role, defaultDatasetRole}]
await pool(memberships, (m) => gql(ADD_MEMBER, { input: m }, benchToken));
const tMembers = Date.now();

let collaborators = 0;
const datasets = SHAPE.datasets(); // [{owner, name, description, public}]
await pool(datasets, async (d) => {
  const data = await gql(CREATE_DATASET, { input: d }, benchToken);
  collaborators += data.createDataset.dataset.collaborators.totalCount;
});
const tDatasets = Date.now();

for (const org of [SHAPE.keysetSmall, SHAPE.keysetLarge]) {
  await gql(CREATE_ORG, { input: { username: org, displayName: org } }, keysetToken);
}

console.log(
  JSON.stringify({
    benchToken,
    keysetToken,
    users: users.length + 2,
    organizations: orgs.length + 2,
    memberships: memberships.length + orgs.length + 2,
    datasets: datasets.length,
    collaborators,
    seconds: {
      signUps: (tUsers - t0) / 1000,
      members: (tMembers - tUsers) / 1000,
      datasets: (tDatasets - tMembers) / 1000,
    },
  }),
);
