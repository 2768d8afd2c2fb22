//! The whole data model: accounts (one namespace for users and organizations), users,
//! organizations, memberships, datasets, dataset collaborators and server settings.
//!
//! Case-insensitive uniqueness is kept by the database itself: every name has a `*_key`
//! column that a CHECK constraint pins to `lower(name)`, and the key carries the unique index.
//! Memberships and collaborators copy the user's `username_key` (kept in step by a composite
//! foreign key with ON UPDATE CASCADE) so that the API's pagination order, by username, is an
//! index range scan inside one organization or dataset.

use sea_orm_migration::prelude::*;

/// The initial schema.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261129_000001_initial"
    }
}

const ORG_ROLES: &str = "('MEMBER', 'ADMIN')";
const DATASET_ROLES: &str = "('VIEWER', 'LABELER', 'REVIEWER', 'MANAGER', 'ADMIN')";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Account::Table)
                    .col(
                        ColumnDef::new(Account::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Account::Kind).string_len(16).not_null())
                    .col(ColumnDef::new(Account::Username).string_len(39).not_null())
                    .col(
                        ColumnDef::new(Account::UsernameKey)
                            .string_len(39)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Account::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .check(Expr::cust("kind IN ('USER', 'ORGANIZATION')"))
                    .check(Expr::cust("username_key = lower(username)"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("account_username_key")
                    .table(Account::Table)
                    .col(Account::UsernameKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // The target of the (user id, username key) foreign keys below.
        manager
            .create_index(
                Index::create()
                    .name("account_id_username_key")
                    .table(Account::Table)
                    .col(Account::Id)
                    .col(Account::UsernameKey)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(UserAccount::Table)
                    .col(
                        ColumnDef::new(UserAccount::AccountId)
                            .big_integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(UserAccount::Email)
                            .string_len(254)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(UserAccount::EmailKey)
                            .string_len(254)
                            .not_null(),
                    )
                    .col(ColumnDef::new(UserAccount::PasswordHash).text().not_null())
                    .check(Expr::cust("email_key = lower(email)"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("user_account")
                            .from(UserAccount::Table, UserAccount::AccountId)
                            .to(Account::Table, Account::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("user_email_key")
                    .table(UserAccount::Table)
                    .col(UserAccount::EmailKey)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Organization::Table)
                    .col(
                        ColumnDef::new(Organization::AccountId)
                            .big_integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(Organization::DisplayName)
                            .string_len(100)
                            .null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("organization_account")
                            .from(Organization::Table, Organization::AccountId)
                            .to(Account::Table, Account::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Membership::Table)
                    .col(
                        ColumnDef::new(Membership::OrganizationId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Membership::UserId).big_integer().not_null())
                    .col(
                        ColumnDef::new(Membership::UsernameKey)
                            .string_len(39)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Membership::Role).string_len(16).not_null())
                    .col(
                        ColumnDef::new(Membership::DefaultDatasetRole)
                            .string_len(16)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(Membership::JoinedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(Membership::OrganizationId)
                            .col(Membership::UserId),
                    )
                    .check(Expr::cust(format!("role IN {ORG_ROLES}")))
                    .check(Expr::cust(format!(
                        "default_dataset_role IS NULL OR default_dataset_role IN {DATASET_ROLES}"
                    )))
                    .foreign_key(
                        ForeignKey::create()
                            .name("membership_organization")
                            .from(Membership::Table, Membership::OrganizationId)
                            .to(Organization::Table, Organization::AccountId)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("membership_user")
                            .from(Membership::Table, Membership::UserId)
                            .to(UserAccount::Table, UserAccount::AccountId)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("membership_username_key")
                            .from(
                                Membership::Table,
                                (Membership::UserId, Membership::UsernameKey),
                            )
                            .to(Account::Table, (Account::Id, Account::UsernameKey))
                            .on_delete(ForeignKeyAction::Cascade)
                            .on_update(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Members in API order (by username, case-insensitive) for keyset pagination.
        manager
            .create_index(
                Index::create()
                    .name("membership_organization_username")
                    .table(Membership::Table)
                    .col(Membership::OrganizationId)
                    .col(Membership::UsernameKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // A user's memberships (viewer.memberships, permission look-ups).
        manager
            .create_index(
                Index::create()
                    .name("membership_user")
                    .table(Membership::Table)
                    .col(Membership::UserId)
                    .to_owned(),
            )
            .await?;
        // The last-admin rule counts an organization's admins.
        manager
            .create_index(
                Index::create()
                    .name("membership_organization_role")
                    .table(Membership::Table)
                    .col(Membership::OrganizationId)
                    .col(Membership::Role)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Dataset::Table)
                    .col(
                        ColumnDef::new(Dataset::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Dataset::OwnerId).big_integer().not_null())
                    .col(ColumnDef::new(Dataset::Name).string_len(100).not_null())
                    .col(ColumnDef::new(Dataset::NameKey).string_len(100).not_null())
                    .col(ColumnDef::new(Dataset::Description).text().not_null())
                    .col(ColumnDef::new(Dataset::Public).boolean().not_null())
                    .col(
                        ColumnDef::new(Dataset::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .check(Expr::cust("name_key = lower(name)"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("dataset_owner")
                            .from(Dataset::Table, Dataset::OwnerId)
                            .to(Account::Table, Account::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Unique per owner, case-insensitively; also the listing order (by name).
        manager
            .create_index(
                Index::create()
                    .name("dataset_owner_name_key")
                    .table(Dataset::Table)
                    .col(Dataset::OwnerId)
                    .col(Dataset::NameKey)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Collaborator::Table)
                    .col(
                        ColumnDef::new(Collaborator::DatasetId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Collaborator::UserId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Collaborator::UsernameKey)
                            .string_len(39)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Collaborator::Role).string_len(16).not_null())
                    .primary_key(
                        Index::create()
                            .col(Collaborator::DatasetId)
                            .col(Collaborator::UserId),
                    )
                    .check(Expr::cust(format!("role IN {DATASET_ROLES}")))
                    .foreign_key(
                        ForeignKey::create()
                            .name("collaborator_dataset")
                            .from(Collaborator::Table, Collaborator::DatasetId)
                            .to(Dataset::Table, Dataset::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("collaborator_user")
                            .from(Collaborator::Table, Collaborator::UserId)
                            .to(UserAccount::Table, UserAccount::AccountId)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("collaborator_username_key")
                            .from(
                                Collaborator::Table,
                                (Collaborator::UserId, Collaborator::UsernameKey),
                            )
                            .to(Account::Table, (Account::Id, Account::UsernameKey))
                            .on_delete(ForeignKeyAction::Cascade)
                            .on_update(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("collaborator_dataset_username")
                    .table(Collaborator::Table)
                    .col(Collaborator::DatasetId)
                    .col(Collaborator::UsernameKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("collaborator_user")
                    .table(Collaborator::Table)
                    .col(Collaborator::UserId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ServerSetting::Table)
                    .col(
                        ColumnDef::new(ServerSetting::Key)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(ServerSetting::Value).text().not_null())
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ServerSetting::Table.into_iden(),
            Collaborator::Table.into_iden(),
            Dataset::Table.into_iden(),
            Membership::Table.into_iden(),
            Organization::Table.into_iden(),
            UserAccount::Table.into_iden(),
            Account::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Account {
    Table,
    Id,
    Kind,
    Username,
    UsernameKey,
    CreatedAt,
}

#[derive(DeriveIden)]
enum UserAccount {
    Table,
    AccountId,
    Email,
    EmailKey,
    PasswordHash,
}

#[derive(DeriveIden)]
enum Organization {
    Table,
    AccountId,
    DisplayName,
}

#[derive(DeriveIden)]
enum Membership {
    Table,
    OrganizationId,
    UserId,
    UsernameKey,
    Role,
    DefaultDatasetRole,
    JoinedAt,
}

#[derive(DeriveIden)]
enum Dataset {
    Table,
    Id,
    OwnerId,
    Name,
    NameKey,
    Description,
    Public,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Collaborator {
    Table,
    DatasetId,
    UserId,
    UsernameKey,
    Role,
}

#[derive(DeriveIden)]
enum ServerSetting {
    Table,
    Key,
    Value,
}
