// The benchmark's hand-written comparison: Apollo Server 5 + dataloader + pg over orgql's
// own tables (no auth, no permission checks). It serves the subset of orgql's schema the
// benchmark asks: `user(username)` stands for orgql's `viewer`. Every list is batched:
// DataLoaders for rows by id, and one LATERAL query per connection level (keyset on the same
// sort keys as orgql: members by username_key, datasets by name_key).
//
//   DATABASE_URL=postgres://… PORT=4001 node server.mjs
import { ApolloServer } from "@apollo/server";
import { startStandaloneServer } from "@apollo/server/standalone";
import { ApolloServerPluginCacheControlDisabled } from "@apollo/server/plugin/disabled";
import DataLoader from "dataloader";
import pg from "pg";

// Timestamps stay text until a resolver asks for one (no Date for every row fetched).
pg.types.setTypeParser(pg.types.builtins.TIMESTAMPTZ, (text) => text);
const iso = (text) => new Date(text).toISOString();

const db = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: Number(process.env.PG_POOL_MAX || 16) });

const typeDefs = `#graphql
  type Query { user(username: String!): User  organization(username: String!): Organization }
  type User { id: ID! username: String! email: String createdAt: String! memberships: [Member!]! }
  type Organization {
    id: ID! username: String! displayName: String createdAt: String!
    members(first: Int = 20, after: String): MemberConnection!
    datasets(first: Int = 20, after: String): DatasetConnection!
  }
  type Member { user: User! organization: Organization! role: String! defaultDatasetRole: String joinedAt: String! }
  type Dataset { id: ID! name: String! description: String! public: Boolean! createdAt: String! }
  type PageInfo { hasNextPage: Boolean! endCursor: String }
  type MemberConnection { nodes: [Member!]! pageInfo: PageInfo! }
  type DatasetConnection { nodes: [Dataset!]! pageInfo: PageInfo! }
`;

const cursor = (key) => Buffer.from(`k:${key}`).toString("base64url");
const uncursor = (c) => (c ? Buffer.from(c, "base64url").toString().slice(2) : "");

const byId = (rows, ids, key = "id") => {
  const map = new Map(rows.map((r) => [String(r[key]), r]));
  return ids.map((id) => map.get(String(id)) ?? null);
};
const groupBy = (rows, ids, key) => {
  const map = new Map(ids.map((id) => [String(id), []]));
  for (const r of rows) map.get(String(r[key]))?.push(r);
  return ids.map((id) => map.get(String(id)));
};

// One page per parent, all parents in one query: keys are `${parentId}|${first}|${after}`.
function pageLoader(sql, parentKey, sortKey) {
  return new DataLoader(async (keys) => {
    const groups = new Map();
    for (const k of keys) {
      const [id, first, after] = k.split("|");
      const g = `${first}|${after}`;
      if (!groups.has(g)) groups.set(g, []);
      groups.get(g).push(id);
    }
    const pages = new Map();
    for (const [g, ids] of groups) {
      const [first, after] = g.split("|");
      const { rows } = await db.query(sql, [ids, after, Number(first) + 1]);
      groupBy(rows, ids, parentKey).forEach((list, i) => {
        const hasNextPage = list.length > Number(first);
        const nodes = list.slice(0, Number(first));
        pages.set(`${ids[i]}|${g}`, {
          nodes,
          pageInfo: { hasNextPage, endCursor: nodes.length ? cursor(nodes.at(-1)[sortKey]) : null },
        });
      });
    }
    return keys.map((k) => pages.get(k));
  });
}

const loaders = () => ({
  account: new DataLoader(async (ids) =>
    byId(
      (await db.query(
        `SELECT a.id, a.username, a.created_at, u.email, o.display_name
           FROM account a LEFT JOIN user_account u ON u.account_id = a.id
           LEFT JOIN organization o ON o.account_id = a.id WHERE a.id = ANY($1)`,
        [ids],
      )).rows,
      ids,
    ),
  ),
  memberships: new DataLoader(async (ids) =>
    groupBy(
      (await db.query(
        `SELECT m.* FROM membership m JOIN account o ON o.id = m.organization_id
          WHERE m.user_id = ANY($1) ORDER BY o.username_key`,
        [ids],
      )).rows,
      ids,
      "user_id",
    ),
  ),
  members: pageLoader(
    `SELECT m.* FROM unnest($1::bigint[]) AS p(id) CROSS JOIN LATERAL
       (SELECT * FROM membership WHERE organization_id = p.id AND username_key > $2
         ORDER BY username_key LIMIT $3) m`,
    "organization_id",
    "username_key",
  ),
  datasets: pageLoader(
    `SELECT d.* FROM unnest($1::bigint[]) AS p(id) CROSS JOIN LATERAL
       (SELECT * FROM dataset WHERE owner_id = p.id AND name_key > $2
         ORDER BY name_key LIMIT $3) d`,
    "owner_id",
    "name_key",
  ),
});

const accountByName = (kind) => async (_, { username }) =>
  (await db.query(
    `SELECT a.id, a.username, a.created_at, u.email, o.display_name
       FROM account a LEFT JOIN user_account u ON u.account_id = a.id
       LEFT JOIN organization o ON o.account_id = a.id
      WHERE a.username_key = lower($1) AND a.kind = $2`,
    [username, kind],
  )).rows[0] ?? null;

const page = (loader) => (parent, { first, after }, { loaders: l }) =>
  l[loader].load(`${parent.id}|${Math.min(Math.max(first ?? 20, 0), 100)}|${uncursor(after)}`);

const resolvers = {
  Query: { user: accountByName("USER"), organization: accountByName("ORGANIZATION") },
  User: {
    createdAt: (a) => iso(a.created_at),
    memberships: (a, _, { loaders: l }) => l.memberships.load(a.id),
  },
  Organization: {
    displayName: (a) => a.display_name,
    createdAt: (a) => iso(a.created_at),
    members: page("members"),
    datasets: page("datasets"),
  },
  Member: {
    user: (m, _, { loaders: l }) => l.account.load(m.user_id),
    organization: (m, _, { loaders: l }) => l.account.load(m.organization_id),
    defaultDatasetRole: (m) => m.default_dataset_role,
    joinedAt: (m) => iso(m.joined_at),
  },
  Dataset: { createdAt: (d) => iso(d.created_at) },
};

const server = new ApolloServer({
  typeDefs,
  resolvers,
  // No per-field cache-control hints are computed (nothing here uses them).
  plugins: [ApolloServerPluginCacheControlDisabled()],
});
const { url } = await startStandaloneServer(server, {
  listen: { host: "127.0.0.1", port: Number(process.env.PORT || 4001) },
  context: async () => ({ loaders: loaders() }),
});
console.log(`apollo bench server at ${url}`);
