//! The `orgql` binary: parse configuration, run.

use clap::Parser;
use std::sync::Arc;

use orgql::config::Config;
use orgql::context::AppState;

/// mimalloc: less CPU per allocation than glibc's malloc for async-graphql's many small,
/// short-lived allocations. Built with its `override` feature it is also the C `malloc` of
/// the process, which SQLite uses: sqlx copies every column value of every row on its worker
/// thread and frees it on tokio's, where glibc's arenas contend. (`bench/README.md` has the
/// figures.)
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    if config.print_schema {
        print!("{}", orgql::schema::sdl());
        return Ok(());
    }
    let _traces = orgql::telemetry::traces::init(config.log_format)?;
    let demo = config.demo;
    orgql::serve(&config, shutdown_signal, async |state, addr| {
        if demo {
            print_demo(state).await?;
        }
        tracing::info!("orgql listening on http://{addr} (GraphiQL at /, API at /graphql)");
        Ok(())
    })
    .await?;
    tracing::info!("orgql stopped");
    Ok(())
}

/// Seeds the demo world (on an empty database) and prints how to use it.
async fn print_demo(state: &Arc<AppState>) -> anyhow::Result<()> {
    match orgql::demo::seed(state).await? {
        None => println!("--demo: the database is not empty, so no demo data was added."),
        Some(tokens) => {
            println!(
                "Demo world created. Every demo user's password is '{}'.",
                orgql::demo::DEMO_PASSWORD
            );
            println!(
                "Paste one of these into GraphiQL's Headers pane as {{\"Authorization\": \"Bearer <token>\"}}:"
            );
            for (user, token) in tokens {
                println!("  {user:<6} {token}");
            }
        }
    }
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut signal) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            signal.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
