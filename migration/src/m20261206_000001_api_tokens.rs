//! API tokens, and sign-in sessions that can be ended.
//!
//! `api_token` holds each token's SHA-256 (never the secret), the user it acts for, the
//! organization it is restricted to (if any), its scopes, when it expires and when it was
//! revoked. `user_account.session_generation` counts the user's "sign out everywhere"s and
//! password changes: a sign-in token carries the generation it was issued in, and only the
//! current one is accepted.

use sea_orm_migration::prelude::*;

/// `api_token`, and `user_account.session_generation`.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261206_000001_api_tokens"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(UserAccount::Table)
                    .add_column(
                        ColumnDef::new(UserAccount::SessionGeneration)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ApiToken::Table)
                    .col(
                        ColumnDef::new(ApiToken::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(ApiToken::UserId).big_integer().not_null())
                    .col(
                        ColumnDef::new(ApiToken::OrganizationId)
                            .big_integer()
                            .null(),
                    )
                    .col(ColumnDef::new(ApiToken::Name).string_len(100).not_null())
                    .col(ColumnDef::new(ApiToken::CanRead).boolean().not_null())
                    .col(ColumnDef::new(ApiToken::CanWrite).boolean().not_null())
                    .col(
                        ColumnDef::new(ApiToken::SecretHash)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ApiToken::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ApiToken::ExpiresAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ApiToken::LastUsedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(ApiToken::RevokedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("api_token_user")
                            .from(ApiToken::Table, ApiToken::UserId)
                            .to(UserAccount::Table, UserAccount::AccountId)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("api_token_organization")
                            .from(ApiToken::Table, ApiToken::OrganizationId)
                            .to(Organization::Table, Organization::AccountId)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            ("api_token_secret_hash", vec![ApiToken::SecretHash]),
            ("api_token_user", vec![ApiToken::UserId, ApiToken::Id]),
            (
                "api_token_organization",
                vec![ApiToken::OrganizationId, ApiToken::Id],
            ),
        ] {
            let mut index = Index::create();
            index.name(name).table(ApiToken::Table);
            for column in columns {
                index.col(column);
            }
            if name == "api_token_secret_hash" {
                index.unique();
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ApiToken::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(UserAccount::Table)
                    .drop_column(UserAccount::SessionGeneration)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum ApiToken {
    Table,
    Id,
    UserId,
    OrganizationId,
    Name,
    CanRead,
    CanWrite,
    SecretHash,
    CreatedAt,
    ExpiresAt,
    LastUsedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum UserAccount {
    Table,
    AccountId,
    SessionGeneration,
}

#[derive(DeriveIden)]
enum Organization {
    Table,
    AccountId,
}
