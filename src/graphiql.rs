//! GraphiQL, served by orgql itself: the page at `GET /` (and `GET /graphql` for a browser)
//! and its assets under `/graphiql/`, embedded at compile time by `build.rs` from
//! `graphiql/vendor/` (the pinned npm packages of `graphiql/package-lock.json`, committed).
//! Nothing is loaded from outside orgql, so GraphiQL works offline.
//!
//! The page has the headers pane open, for `{"Authorization": "Bearer <token>"}`, and the
//! docs explorer.

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/graphiql_assets.rs"));
}

/// Where the assets are served: `/graphiql/<file>`.
const ASSET_PREFIX: &str = "/graphiql/";

/// The first query a new GraphiQL user sees.
const DEFAULT_QUERY: &str = r#"# Welcome to orgql.
#
# Sign up or log in (mutation { logIn(input: {username: "…", password: "…"}) { token } }),
# then paste {"Authorization": "Bearer <token>"} into the Headers pane below.
# The Docs button (top left) explores the schema.

{
  viewer {
    username
  }
}
"#;

/// The routes of the embedded assets.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/graphiql/{file}", get(asset))
}

/// The GraphiQL page.
pub fn page() -> Html<String> {
    Html(offline_page())
}

fn offline_page() -> String {
    let versions = embedded::VERSION;
    let default_query = serde_json::to_string(DEFAULT_QUERY).expect("a string serializes to JSON");
    // `</` cannot end the inline script early: JSON strings may escape `/`.
    let default_query = default_query.replace("</", "<\\/");
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="robots" content="noindex">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <meta name="generator" content="{versions}">
    <title>orgql — GraphiQL</title>
    <style>
      body {{ height: 100%; margin: 0; width: 100%; overflow: hidden; }}
      #graphiql {{ height: 100vh; }}
    </style>
    <link rel="stylesheet" href="{p}graphiql.min.css">
    <script src="{p}react.production.min.js"></script>
    <script src="{p}react-dom.production.min.js"></script>
    <script src="{p}graphiql.min.js"></script>
  </head>
  <body>
    <div id="graphiql">Loading…</div>
    <script>
      const http = GraphiQL.createFetcher({{
        url: new URL("/graphql", window.location.href).toString(),
        fetch: (url, opts = {{}}) => fetch(url, {{ ...opts, credentials: "same-origin" }}),
      }});
      // Subscriptions over Server-Sent Events (graphql-sse, POST /graphql/stream): each
      // `next` event is a result, shown as it arrives, until `complete`.
      const isSubscription = (query, name) => {{
        const operations = [...query.replace(/#[^\n]*/g, "").matchAll(/\b(query|mutation|subscription)\b\s*([_A-Za-z][_0-9A-Za-z]*)?/g)];
        const chosen = name ? operations.find((o) => o[2] === name) : operations[0];
        return chosen !== undefined && chosen[1] === "subscription";
      }};
      async function* stream(params, opts) {{
        const response = await fetch(new URL("/graphql/stream", window.location.href), {{
          method: "POST",
          credentials: "same-origin",
          headers: {{ ...(opts && opts.headers), "content-type": "application/json", accept: "text/event-stream" }},
          body: JSON.stringify(params),
        }});
        if (!response.ok || !response.body) {{
          yield await response.json();
          return;
        }}
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {{
          const {{ value, done }} = await reader.read();
          if (done) return;
          buffer += value;
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {{
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const event = (block.match(/^event: ?(.*)$/m) || [])[1];
            const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
            if (event === "complete") return;
            if (event === "next") yield JSON.parse(data);
          }}
        }}
      }}
      const fetcher = (params, opts) =>
        isSubscription(params.query || "", params.operationName) ? stream(params, opts) : http(params, opts);
      ReactDOM.createRoot(document.getElementById("graphiql")).render(
        React.createElement(GraphiQL, {{
          fetcher,
          defaultQuery: {default_query},
          isHeadersEditorEnabled: true,
          defaultEditorToolsVisibility: "headers",
        }})
      );
    </script>
  </body>
</html>
"#,
        p = ASSET_PREFIX,
    )
}

/// `GET /graphiql/<file>`: one embedded asset.
async fn asset(Path(file): Path<String>) -> Response {
    match embedded::ASSETS
        .iter()
        .find(|(name, _, _)| *name == file.as_str())
    {
        Some((_, content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "public, max-age=86400"),
            ],
            *bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such GraphiQL asset").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_references_only_served_assets() {
        let Html(html) = page();
        assert!(html.contains("/graphql"));
        // Offline always: no URL with a scheme or protocol-relative `//host`, only our assets.
        for remote in ["https://", "http://", "src=\"//", "href=\"//"] {
            assert!(
                !html.contains(remote),
                "the page loads nothing remote ({remote})"
            );
        }
        assert_eq!(embedded::ASSETS.len(), 4);
        for (name, _, bytes) in embedded::ASSETS {
            assert!(html.contains(&format!("{ASSET_PREFIX}{name}")), "{name}");
            assert!(!bytes.is_empty(), "{name}");
        }
        // Every script and stylesheet of the page is one of the embedded assets.
        for reference in html
            .split(['"', '\''])
            .filter(|s| s.starts_with(ASSET_PREFIX))
        {
            let name = &reference[ASSET_PREFIX.len()..];
            assert!(
                embedded::ASSETS.iter().any(|(asset, _, _)| *asset == name),
                "{reference} is not embedded"
            );
        }
        assert!(html.contains(&format!(
            r#"<meta name="generator" content="{}">"#,
            embedded::VERSION
        )));
        assert!(
            embedded::VERSION.starts_with("graphiql 3."),
            "{}",
            embedded::VERSION
        );
    }
}
