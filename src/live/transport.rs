//! Subscriptions over the wire: `graphql-transport-ws` (and the older `graphql-ws`) on
//! `GET /graphql` with `Upgrade: websocket`, and `graphql-sse` in its "distinct connections"
//! mode on `POST /graphql/stream`.
//!
//! A WebSocket connection presents its token in the `connection_init` payload
//! (`{"Authorization": "Bearer …"}`), checked as a request's header is; a bad one closes the
//! connection (`4403`), none leaves it anonymous (subscribing then answers
//! `UNAUTHENTICATED`). Without `connection_init` within the init timeout the connection closes
//! with `4408`; the server pings every `--subscription-ping-seconds`. An SSE request carries
//! its token in `Authorization`; its answer is `next` events, then `complete`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_graphql::Data;
use async_graphql::dataloader::DataLoader;
use async_graphql::http::{WebSocketProtocols, WsMessage};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};

use super::ConnectionSubscriptions;
use super::fanout::LiveExecutor;
use crate::auth::{Presented, Viewer};
use crate::context::AppState;
use crate::loaders::{Batched, DbLoader};
use crate::ratelimit::ClientAddr;
use crate::schema::OrgqlSchema;

/// The WebSocket close code for a refused `connection_init`.
const FORBIDDEN_CODE: u16 = 4403;

/// The WebSocket close code for a connection that did not initialise in time.
const INIT_TIMEOUT_CODE: u16 = 4408;

/// How much a WebSocket connection reads at once. Clients send little (`subscribe`,
/// `complete`, `pong`), and tungstenite zeroes this much before every read attempt: its
/// default, 128 KiB, cost more than everything else a delivered event costs.
const READ_BUFFER: usize = 4096;

/// How the transports behave.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// How long a WebSocket may take to send `connection_init`.
    pub init_timeout: Duration,
    /// How often the server pings an idle connection (WebSocket ping frames; SSE comments).
    pub ping_every: Duration,
}

/// What a subscription's operations run with: the viewer, their credential, the client's
/// address, loaders (without a cache: a subscription lives long, and its events must show
/// names as they are now), and the connection's subscription count.
struct OperationData {
    viewer: Viewer,
    presented: Presented,
    client: ClientAddr,
    loader: DataLoader<Batched>,
    count: ConnectionSubscriptions,
}

impl OperationData {
    fn new(
        state: &Arc<AppState>,
        viewer: Viewer,
        presented: Presented,
        client: SocketAddr,
    ) -> Self {
        let loader = DbLoader::new(state.db.clone(), state.statements.clone(), viewer, None);
        let loader = DataLoader::new(
            Batched::new(loader, None, state.metrics.clone()),
            tokio::spawn,
        )
        .delay(Duration::ZERO);
        loader.enable_all_cache(false);
        OperationData {
            viewer,
            presented,
            client: ClientAddr(client.ip()),
            loader,
            count: ConnectionSubscriptions::default(),
        }
    }

    /// As a WebSocket connection's data, shared by its operations.
    fn into_data(self) -> Data {
        let mut data = Data::default();
        data.insert(self.viewer);
        data.insert(self.presented);
        data.insert(self.client);
        data.insert(self.loader);
        data.insert(self.count);
        data
    }

    /// As one request's data.
    fn into_request(self, request: async_graphql::Request) -> async_graphql::Request {
        request
            .data(self.viewer)
            .data(self.presented)
            .data(self.client)
            .data(self.loader)
            .data(self.count)
    }
}

/// Checks `presented` against the database: the viewer, or `None` when it is refused.
async fn viewer_of(
    state: &AppState,
    presented: &Presented,
) -> Result<Option<Viewer>, crate::error::ApiError> {
    Ok(crate::accounts::check_credential(&state.db, presented)
        .await?
        .map(|checked| checked.viewer))
}

/// Upgrades `GET /graphql` to a GraphQL WebSocket connection.
pub async fn websocket(
    upgrade: WebSocketUpgrade,
    headers: &HeaderMap,
    schema: OrgqlSchema,
    state: Arc<AppState>,
    client: SocketAddr,
    settings: Settings,
) -> Response {
    let protocol = headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|value| value.to_str().ok())
        .and_then(|offered| {
            offered
                .split(',')
                .find_map(|p| p.trim().parse::<WebSocketProtocols>().ok())
        });
    let Some(protocol) = protocol else {
        return (
            StatusCode::BAD_REQUEST,
            "offer the WebSocket subprotocol graphql-transport-ws",
        )
            .into_response();
    };
    upgrade
        .protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| serve(socket, protocol, schema, state, client, settings))
}

/// One WebSocket connection, until either side closes it.
async fn serve(
    socket: WebSocket,
    protocol: WebSocketProtocols,
    schema: OrgqlSchema,
    state: Arc<AppState>,
    client: SocketAddr,
    settings: Settings,
) {
    let (mut sink, mut stream) = socket.split();
    // The client's messages, read by a task of their own, which runs only when the socket
    // has something to read. Read by the protocol's stream itself, the socket was read once
    // more for every response sent, and each read attempt zeroes tungstenite's read buffer.
    let (incoming, mut received) = tokio::sync::mpsc::channel(16);
    let _reader = super::feed::AbortOnDrop(tokio::spawn(async move {
        while let Some(Ok(message)) = stream.next().await {
            if matches!(message, Message::Text(_) | Message::Binary(_))
                && incoming.send(message.into_data()).await.is_err()
            {
                return;
            }
        }
    }));
    let input = futures_util::stream::poll_fn(move |cx| received.poll_recv(cx));
    let initialised = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicBool::new(false));
    let on_init = {
        let initialised = initialised.clone();
        let refused_flag = refused.clone();
        let keys_state = state.clone();
        move |payload: serde_json::Value| async move {
            initialised.store(true, Ordering::Relaxed);
            // Refused until proven otherwise.
            refused_flag.store(true, Ordering::Relaxed);
            let authorization = ["Authorization", "authorization"]
                .iter()
                .find_map(|k| payload.get(*k).and_then(|v| v.as_str()).map(str::to_owned));
            let refused = || {
                async_graphql::Error::new("the token is invalid, expired or revoked: sign in again")
                    .extend_with(|_, e| e.set("code", "UNAUTHENTICATED"))
            };
            let presented = crate::auth::presented_in(authorization.as_deref(), &keys_state.keys)
                .ok_or_else(refused)?;
            let viewer = viewer_of(&keys_state, &presented)
                .await
                .map_err(async_graphql::Error::from)?
                .ok_or_else(refused)?;
            refused_flag.store(false, Ordering::Relaxed);
            Ok(OperationData::new(&keys_state, viewer, presented, client).into_data())
        }
    };
    use async_graphql::ErrorExtensions;
    let output = async_graphql::http::WebSocket::new(LiveExecutor(schema), input, protocol)
        .on_connection_init(on_init);
    futures_util::pin_mut!(output);
    let init_deadline = tokio::time::sleep(settings.init_timeout);
    tokio::pin!(init_deadline);
    let mut ping = tokio::time::interval(settings.ping_every);
    ping.tick().await;
    loop {
        tokio::select! {
            message = output.next() => {
                let message = match message {
                    Some(WsMessage::Text(text)) => Message::Text(text.into()),
                    // graphql-transport-ws: a refused `connection_init` closes with 4403.
                    Some(WsMessage::Close(code, reason)) => {
                        let code = if refused.load(Ordering::Relaxed) { FORBIDDEN_CODE } else { code };
                        Message::Close(Some(CloseFrame { code, reason: reason.into() }))
                    }
                    None => break,
                };
                let closing = matches!(message, Message::Close(_));
                if sink.send(message).await.is_err() || closing {
                    break;
                }
            }
            _ = &mut init_deadline, if !initialised.load(Ordering::Relaxed) => {
                let _ = sink
                    .send(Message::Close(Some(CloseFrame {
                        code: INIT_TIMEOUT_CODE,
                        reason: "Connection initialisation timeout".into(),
                    })))
                    .await;
                break;
            }
            _ = ping.tick() => {
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    break;
                }
            }
        }
    }
}

/// `POST /graphql/stream`: one operation (a subscription, or a query or mutation) answered
/// as Server-Sent Events, `next` for each result and `complete` at the end.
pub async fn sse(
    headers: &HeaderMap,
    body: &[u8],
    schema: OrgqlSchema,
    state: Arc<AppState>,
    client: SocketAddr,
    settings: Settings,
) -> Response {
    let Some(presented) = crate::auth::presented_in(
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
        &state.keys,
    ) else {
        return refusal(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "the token is invalid, expired or revoked: sign in again",
        );
    };
    let request: async_graphql::Request = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(_) => {
            return refusal(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                "send one GraphQL request as JSON: a string `query`, optionally `variables` and `operationName`",
            );
        }
    };
    let viewer = match viewer_of(&state, &presented).await {
        Ok(Some(viewer)) => viewer,
        Ok(None) => {
            return refusal(
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                "the token is invalid, expired or revoked: sign in again",
            );
        }
        Err(_) => {
            return refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "INTERNAL_SERVER_ERROR",
                "internal server error",
            );
        }
    };
    let request = OperationData::new(&state, viewer, presented, client).into_request(request);
    let events = super::fanout::execute_stream(&schema, request, None)
        .map(|response| {
            Ok::<_, std::convert::Infallible>(
                Event::default()
                    .event("next")
                    .json_data(&response)
                    .unwrap_or_else(|_| Event::default().event("next").data("{}")),
            )
        })
        .chain(futures_util::stream::once(async {
            Ok(Event::default().event("complete").data(""))
        }));
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(settings.ping_every))
        .into_response()
}

/// A refused SSE request: a GraphQL response with a code, as JSON.
fn refusal(status: StatusCode, code: &str, message: &str) -> Response {
    let body =
        serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
    (status, axum::Json(body)).into_response()
}
