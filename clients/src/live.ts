// Live updates with graphql-ws (the npm client of the graphql-transport-ws protocol),
// typed by the generated subscription documents.
import { createClient, type Client } from "graphql-ws";
import { print } from "graphql";
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import WebSocket from "ws";

/** A graphql-ws client for orgql at `endpoint` (`http://…/graphql`), signed in with `token`:
 * the token goes in the `connection_init` payload, as API.md says. */
export function liveClient(endpoint: string, token: string): Client {
  return createClient({
    url: endpoint.replace(/^http/, "ws"),
    webSocketImpl: WebSocket,
    connectionParams: { Authorization: `Bearer ${token}` },
    lazy: false,
    retryAttempts: 0,
  });
}

/** A running subscription: its results as they arrive, and how it ended. */
export interface Live<Data> {
  /** Resolves with the next result's data (or rejects with its errors' codes). */
  next(): Promise<Data>;
  /** Stops it. */
  stop(): void;
}

/** Subscribes to `document`; results queue until `next()` takes them. */
export function subscribe<Data, Variables extends Record<string, unknown>>(
  client: Client,
  document: TypedDocumentNode<Data, Variables>,
  variables: Variables,
): Live<Data> {
  const queue: Array<{ data?: Data; codes?: string[]; done?: boolean }> = [];
  const waiting: Array<() => void> = [];
  const push = (item: { data?: Data; codes?: string[]; done?: boolean }) => {
    queue.push(item);
    waiting.shift()?.();
  };
  const stop = client.subscribe<Data>(
    { query: print(document), variables },
    {
      next: (result) => {
        if (result.errors?.length) {
          push({ codes: result.errors.map((e) => String(e.extensions?.code ?? "")) });
        } else {
          push({ data: result.data as Data });
        }
      },
      error: (error) => push({ codes: [String(error)] }),
      complete: () => push({ done: true }),
    },
  );
  return {
    async next() {
      while (!queue.length) await new Promise<void>((r) => waiting.push(r));
      const item = queue.shift()!;
      if (item.done) throw new Error("the subscription completed");
      if (item.codes) throw Object.assign(new Error(`refused: ${item.codes.join(", ")}`), { codes: item.codes });
      return item.data!;
    },
    stop,
  };
}
