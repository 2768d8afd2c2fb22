//! Invitations to join an organization: the invitee agrees first (`addMember` stays).
//!
//! `state` is stored as PENDING, ACCEPTED, DECLINED, REVOKED or EXPIRED; a PENDING row past
//! `expires_at` reads EXPIRED (it is written so when someone acts on it). At most one PENDING
//! invitation per organization and invitee is kept by the organization's row lock, as every
//! membership change is.

use sea_orm_migration::prelude::*;

/// `invitation`.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261207_000002_invitations"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Invitation::Table)
                    .col(
                        ColumnDef::new(Invitation::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(Invitation::OrganizationId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Invitation::InviteeId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Invitation::InviterId).big_integer().null())
                    .col(ColumnDef::new(Invitation::Role).string_len(16).not_null())
                    .col(
                        ColumnDef::new(Invitation::DefaultDatasetRole)
                            .string_len(16)
                            .null(),
                    )
                    .col(ColumnDef::new(Invitation::State).string_len(16).not_null())
                    .col(
                        ColumnDef::new(Invitation::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Invitation::ExpiresAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("invitation_organization")
                            .from(Invitation::Table, Invitation::OrganizationId)
                            .to(Organization::Table, Organization::AccountId)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("invitation_invitee")
                            .from(Invitation::Table, Invitation::InviteeId)
                            .to(UserAccount::Table, UserAccount::AccountId)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("invitation_inviter")
                            .from(Invitation::Table, Invitation::InviterId)
                            .to(UserAccount::Table, UserAccount::AccountId)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            (
                "invitation_organization",
                vec![Invitation::OrganizationId, Invitation::Id],
            ),
            (
                "invitation_invitee",
                vec![Invitation::InviteeId, Invitation::Id],
            ),
            ("invitation_inviter", vec![Invitation::InviterId]),
        ] {
            let mut index = Index::create();
            index.name(name).table(Invitation::Table);
            for column in columns {
                index.col(column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Invitation::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Invitation {
    Table,
    Id,
    OrganizationId,
    InviteeId,
    InviterId,
    Role,
    DefaultDatasetRole,
    State,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Organization {
    Table,
    AccountId,
}

#[derive(DeriveIden)]
enum UserAccount {
    Table,
    AccountId,
}
