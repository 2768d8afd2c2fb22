//! Holds the live-updates benchmark's subscriptions: `graphql-transport-ws` connections, one
//! `organizationEvents` subscription each, every `next` message kept with its arrival time.
//!
//! Input: a file of `port token` lines (one subscriber each), its path the first argument;
//! the organization's username the second. It prints `ready` once every subscription is
//! acknowledged; then each line on stdin is a command: `count` prints how many `next`
//! messages have arrived, `report <path>` writes them to `<path>` (a line each:
//! `subscriber<TAB>arrival in ms since the epoch<TAB>message`) and prints `done`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// What one subscriber received: (arrival, message) for each `next`.
type Received = Arc<Mutex<Vec<(f64, Message)>>>;

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
        * 1000.0
}

async fn subscribe(
    port: u16,
    token: String,
    organization: String,
    received: Received,
    acknowledged: Arc<AtomicUsize>,
    nexts: Arc<AtomicUsize>,
) {
    let mut request = format!("ws://127.0.0.1:{port}/graphql")
        .into_client_request()
        .expect("a valid URL");
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().expect("a valid header"),
    );
    // tungstenite zeroes its whole read buffer (128 KiB by default) before each read: with a
    // message per read, that was most of what this process spent. Messages here are small.
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let (socket, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), false)
        .await
        .expect("connects");
    let (mut sink, mut stream) = socket.split();
    let init =
        format!(r#"{{"type":"connection_init","payload":{{"Authorization":"Bearer {token}"}}}}"#);
    sink.send(Message::text(init)).await.expect("sends");
    while let Some(message) = stream.next().await {
        let Ok(message) = message else { break };
        let at = now_ms();
        let Message::Text(text) = &message else {
            continue;
        };
        if text.contains(r#""type":"next""#) {
            received.lock().await.push((at, message));
            nexts.fetch_add(1, Ordering::Relaxed);
        } else if text.contains(r#""type":"connection_ack""#) {
            let subscribe = format!(
                r#"{{"id":"1","type":"subscribe","payload":{{"query":"subscription($o: String!) {{ organizationEvents(organization: $o) {{ id action createdAt subjectUsername role }} }}","variables":{{"o":"{organization}"}}}}}}"#
            );
            sink.send(Message::text(subscribe)).await.expect("sends");
            acknowledged.fetch_add(1, Ordering::Relaxed);
        } else if text.contains(r#""type":"ping""#) {
            let _ = sink.send(Message::text(r#"{"type":"pong"}"#)).await;
        }
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let list = args.next().expect("the subscribers file");
    let organization = args.next().expect("the organization");
    let subscribers: Vec<(u16, String)> = std::fs::read_to_string(list)
        .expect("readable")
        .lines()
        .filter_map(|line| {
            let (port, token) = line.split_once(' ')?;
            Some((port.parse().ok()?, token.to_owned()))
        })
        .collect();
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let nexts = Arc::new(AtomicUsize::new(0));
    let received: Vec<Received> = subscribers.iter().map(|_| Received::default()).collect();
    for ((port, token), received) in subscribers.iter().cloned().zip(&received) {
        tokio::spawn(subscribe(
            port,
            token,
            organization.clone(),
            received.clone(),
            acknowledged.clone(),
            nexts.clone(),
        ));
    }
    while acknowledged.load(Ordering::Relaxed) < subscribers.len() {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // The subscriptions are acknowledged when `subscribe` has been sent; give the server a
    // moment to register them.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let mut stdout = tokio::io::stdout();
    stdout.write_all(b"ready\n").await.expect("stdout");
    stdout.flush().await.expect("stdout");
    let mut commands = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(command)) = commands.next_line().await {
        if command == "count" {
            let line = format!("{}\n", nexts.load(Ordering::Relaxed));
            stdout.write_all(line.as_bytes()).await.expect("stdout");
        } else if let Some(path) = command.strip_prefix("report ") {
            let mut out = String::new();
            for (i, received) in received.iter().enumerate() {
                for (at, message) in received.lock().await.iter() {
                    if let Message::Text(text) = message {
                        out.push_str(&format!("{i}\t{at:.3}\t{}\n", text.as_str()));
                    }
                }
            }
            std::fs::write(path, out).expect("writable");
            stdout.write_all(b"done\n").await.expect("stdout");
        }
        stdout.flush().await.expect("stdout");
    }
}
