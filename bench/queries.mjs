// The benchmark's queries, one equivalent per server, and how to check an answer's shape.
//
// orgql is asked as a signed-in client asks it (`viewer`, with a bearer token; its
// permission checks run). PostGraphile and the Apollo server have no auth: "the viewer" is
// the user `bench` fetched by username. Every server returns the same data: the same
// organizations, members (by username) and datasets (by name), the same fields.

import { SHAPE } from "./seed/shape.mjs";

const org = SHAPE.organizations()[0];

export const QUERIES = {
  orgql: {
    nested: `query Nested {
  viewer {
    memberships {
      role
      organization {
        id username displayName
        members(first: 50) { nodes { role defaultDatasetRole user { id username } } }
        datasets(first: 20) { nodes { id name description public } }
      }
    }
  }
}`,
    viewer: `query Viewer { viewer { id username email createdAt } }`,
    members: `query Members {
  organization(username: "${org}") {
    id username
    members(first: 20) { nodes { role user { id username } } pageInfo { hasNextPage endCursor } }
  }
}`,
    keyset: `query Page($org: String!, $after: String) {
  organization(username: $org) {
    members(first: 20, after: $after) { nodes { role user { id username } } pageInfo { hasNextPage endCursor } }
  }
}`,
  },
  apollo: {
    nested: `query Nested {
  user(username: "${SHAPE.viewer}") {
    memberships {
      role
      organization {
        id username displayName
        members(first: 50) { nodes { role defaultDatasetRole user { id username } } }
        datasets(first: 20) { nodes { id name description public } }
      }
    }
  }
}`,
    viewer: `query Viewer { user(username: "${SHAPE.viewer}") { id username email createdAt } }`,
    members: `query Members {
  organization(username: "${org}") {
    id username
    members(first: 20) { nodes { role user { id username } } pageInfo { hasNextPage endCursor } }
  }
}`,
    keyset: `query Page($org: String!, $after: String) {
  organization(username: $org) {
    members(first: 20, after: $after) { nodes { role user { id username } } pageInfo { hasNextPage endCursor } }
  }
}`,
  },
  postgraphile: {
    nested: `query Nested {
  allAccounts(condition: { usernameKey: "${SHAPE.viewer}" }) { nodes {
    userAccountByAccountId {
      membershipsByUserId {
        nodes {
          role
          organizationByOrganizationId {
            displayName
            accountByAccountId {
              id username
              datasetsByOwnerId(first: 20, orderBy: NAME_KEY_ASC) { nodes { id name description public } }
            }
            membershipsByOrganizationId(first: 50, orderBy: USERNAME_KEY_ASC) {
              nodes { role defaultDatasetRole accountByUserIdAndUsernameKey { id username } }
            }
          }
        }
      }
    }
  } }
}`,
    viewer: `query Viewer {
  allAccounts(condition: { usernameKey: "${SHAPE.viewer}" }) { nodes { id username createdAt userAccountByAccountId { email } } }
}`,
    members: `query Members {
  allAccounts(condition: { usernameKey: "${org}" }) { nodes {
    id username
    organizationByAccountId {
      membershipsByOrganizationId(first: 20, orderBy: USERNAME_KEY_ASC) {
        nodes { role accountByUserIdAndUsernameKey { id username } }
        pageInfo { hasNextPage endCursor }
      }
    }
  } }
}`,
  },
};

// Normalizes each server's nested answer to [{org, members: [username], datasets: [name]}].
export function nestedShape(server, data) {
  if (server === "postgraphile") {
    return data.allAccounts.nodes[0].userAccountByAccountId.membershipsByUserId.nodes.map((m) => {
      const o = m.organizationByOrganizationId;
      return {
        org: o.accountByAccountId.username,
        members: o.membershipsByOrganizationId.nodes.map((n) => n.accountByUserIdAndUsernameKey.username),
        datasets: o.accountByAccountId.datasetsByOwnerId.nodes.map((d) => d.name),
      };
    });
  }
  const root = server === "orgql" ? data.viewer : data.user;
  return root.memberships.map((m) => ({
    org: m.organization.username,
    members: m.organization.members.nodes.map((n) => n.user.username),
    datasets: m.organization.datasets.nodes.map((d) => d.name),
  }));
}

// Normalizes a members page to [username].
export function membersShape(server, data) {
  if (server === "postgraphile") {
    return data.allAccounts.nodes[0].organizationByAccountId.membershipsByOrganizationId.nodes.map(
      (n) => n.accountByUserIdAndUsernameKey.username,
    );
  }
  return data.organization.members.nodes.map((n) => n.user.username);
}

// The keyset cursor orgql (and the Apollo server) use: base64url("k:" + sort key).
export const keyCursor = (key) => Buffer.from(`k:${key}`).toString("base64url");
