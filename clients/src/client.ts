// A small typed client for orgql on top of urql: one client per signed-in user, typed by
// the documents GraphQL Code Generator makes from src/operations/*.graphql.
import { Client, CombinedError, fetchExchange } from "@urql/core";
import type { AnyVariables, OperationResult, TypedDocumentNode } from "@urql/core";

export * from "./gql/graphql.ts";

/** The `extensions.code` values of orgql's errors (API.md, "Errors"). */
export type ErrorCode =
  | "UNAUTHENTICATED"
  | "FORBIDDEN"
  | "NOT_FOUND"
  | "BAD_USER_INPUT"
  | "CONFLICT"
  | "RATE_LIMITED"
  | "INTERNAL_SERVER_ERROR";

/** A urql client for `endpoint` (e.g. `http://127.0.0.1:8000/graphql`), signed in with
 * `token` when given. Queries go over GET (as GraphQL over HTTP allows), mutations POST. */
export function orgqlClient(endpoint: string, token?: string): Client {
  return new Client({
    url: endpoint,
    exchanges: [fetchExchange],
    requestPolicy: "network-only",
    preferGetMethod: "within-url-limit",
    fetchOptions: () => (token ? { headers: { authorization: `Bearer ${token}` } } : {}),
  });
}

/** An operation refused by the server (or the network), with its orgql error codes. */
export class OrgqlError extends Error {
  constructor(
    readonly error: CombinedError,
    readonly codes: string[],
  ) {
    super(error.message);
  }
}

/** The error codes of a result (empty when it succeeded). */
export function errorCodes(result: OperationResult): string[] {
  return (result.error?.graphQLErrors ?? []).map((e) => String(e.extensions?.code ?? ""));
}

/** Runs a query and returns its data, or throws an `OrgqlError`. */
export async function query<Data, Variables extends AnyVariables>(
  client: Client,
  document: TypedDocumentNode<Data, Variables>,
  variables: Variables,
): Promise<Data> {
  return unwrap(await client.query(document, variables).toPromise());
}

/** Runs a mutation and returns its data, or throws an `OrgqlError`. */
export async function mutate<Data, Variables extends AnyVariables>(
  client: Client,
  document: TypedDocumentNode<Data, Variables>,
  variables: Variables,
): Promise<Data> {
  return unwrap(await client.mutation(document, variables).toPromise());
}

function unwrap<Data>(result: OperationResult<Data>): Data {
  if (result.error) {
    throw new OrgqlError(result.error, errorCodes(result));
  }
  if (result.data === undefined) {
    throw new Error("the server answered without data");
  }
  return result.data;
}
