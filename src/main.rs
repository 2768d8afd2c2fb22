//! The `orgql` binary: parse configuration, run.

use clap::Parser;
use orgql::Application;
use orgql::config::Config;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    return_large_allocations_to_the_system();
    let config = Config::parse();
    if config.print_schema {
        print!("{}", orgql::schema::sdl());
        return Ok(());
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn")),
        )
        .init();
    let app = Application::build(&config).await?;
    if config.demo {
        print_demo(&app).await?;
    }
    tracing::info!(
        "orgql listening on http://{} (GraphiQL at /, API at /graphql)",
        app.local_addr()
    );
    app.run_until(shutdown_signal()).await?;
    tracing::info!("orgql stopped");
    Ok(())
}

/// Seeds the demo world (on an empty database) and prints how to use it.
async fn print_demo(app: &Application) -> anyhow::Result<()> {
    match orgql::demo::seed(app.state()).await? {
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

/// Each argon2 hash works in a 19 MiB buffer. glibc's malloc serves such blocks from its
/// arenas and keeps them after they are freed (its mmap threshold grows with every large
/// free), so a server that hashes on several threads settles hundreds of MiB above what it
/// uses. Pinning the threshold at 128 KiB makes large blocks mmap'd and returned on free.
fn return_large_allocations_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes malloc's tuning; it is called before any other thread
    // exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
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
