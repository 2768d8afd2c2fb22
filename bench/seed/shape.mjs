// The benchmark's data set: names and sizes, shared by seed.mjs and run.mjs.

export const PASSWORD = "bench-password-1";

const ORGS = 20;
const MEMBERS_PER_ORG = 50; // including `bench`, the creator and first admin
const DATASETS_PER_ORG = 20;
const DEFAULT_ROLES = [null, "VIEWER", "LABELER", "REVIEWER", "MANAGER"];

const pad = (n, width) => String(n).padStart(width, "0");

export const SHAPE = {
  ORGS,
  MEMBERS_PER_ORG,
  DATASETS_PER_ORG,
  viewer: "bench",
  keysetAdmin: "bench-keyset",
  keysetSmall: "keyset-small",
  keysetLarge: "keyset-large",
  keysetSmallMembers: 100, // including bench-keyset
  keysetLargeMembers: 100_000, // including bench-keyset
  // Bulk-inserted users are `kl-000001` …; bench-keyset sorts before them.
  keysetUser: (n) => `kl-${pad(n, 6)}`,
  organizations: () => Array.from({ length: ORGS }, (_, i) => `org-${pad(i + 1, 2)}`),
  users: () => Array.from({ length: ORGS * (MEMBERS_PER_ORG - 1) }, (_, i) => `user-${pad(i + 1, 4)}`),
  memberships() {
    const out = [];
    const users = SHAPE.users();
    SHAPE.organizations().forEach((organization, o) => {
      for (let j = 0; j < MEMBERS_PER_ORG - 1; j++) {
        const n = o * (MEMBERS_PER_ORG - 1) + j;
        out.push({
          organization,
          username: users[n],
          role: n % 10 === 9 ? "ADMIN" : "MEMBER",
          defaultDatasetRole: DEFAULT_ROLES[n % DEFAULT_ROLES.length],
        });
      }
    });
    return out;
  },
  datasets() {
    const out = [];
    for (const owner of SHAPE.organizations()) {
      for (let d = 1; d <= DATASETS_PER_ORG; d++) {
        out.push({
          owner,
          name: `dataset-${pad(d, 2)}`,
          description: `Dataset ${d} of ${owner}`,
          public: d % 2 === 0,
        });
      }
    }
    return out;
  },
};
