//! The migration CLI: `cargo run -p migration --features cli -- --help`.
use sea_orm_migration::prelude::*;

#[tokio::main]
async fn main() {
    cli::run_cli(migration::Migrator).await;
}
