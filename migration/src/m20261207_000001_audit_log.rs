//! The audit log: one row per change, written in the change's own transaction.
//!
//! An event outlives what it describes, so it keeps names as they were (actor, subject,
//! dataset full name, organization username) beside ids that are set to NULL when the
//! account goes (`actor_id`, `subject_id`) or kept as plain numbers (`dataset_id`,
//! `organization_id`: no foreign key, so deleting a dataset or an organization leaves its
//! events). `organization_id` is the organization whose log shows the event (for a dataset
//! event: the dataset's owner at the time, if an organization); `dataset_id` the dataset
//! whose log shows it. A transfer between organizations is one event in the dataset's log
//! and the new owner's, and a copy without `dataset_id` in the former owner's.

use sea_orm_migration::prelude::*;

/// `audit_event`.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261207_000001_audit_log"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let text =
            |column: AuditEvent, len: u32| ColumnDef::new(column).string_len(len).null().to_owned();
        manager
            .create_table(
                Table::create()
                    .table(AuditEvent::Table)
                    .col(
                        ColumnDef::new(AuditEvent::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(AuditEvent::Action).string_len(32).not_null())
                    .col(
                        ColumnDef::new(AuditEvent::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(AuditEvent::ActorId).big_integer().null())
                    .col(text(AuditEvent::ActorUsername, 39))
                    .col(
                        ColumnDef::new(AuditEvent::OrganizationId)
                            .big_integer()
                            .null(),
                    )
                    .col(ColumnDef::new(AuditEvent::DatasetId).big_integer().null())
                    .col(text(AuditEvent::DatasetFullName, 140))
                    .col(ColumnDef::new(AuditEvent::SubjectId).big_integer().null())
                    .col(text(AuditEvent::SubjectUsername, 39))
                    .col(text(AuditEvent::Role, 16))
                    .col(text(AuditEvent::PreviousRole, 16))
                    .foreign_key(
                        ForeignKey::create()
                            .name("audit_event_actor")
                            .from(AuditEvent::Table, AuditEvent::ActorId)
                            .to(Account::Table, Account::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("audit_event_subject")
                            .from(AuditEvent::Table, AuditEvent::SubjectId)
                            .to(Account::Table, Account::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        // The logs' pages: newest first within an organization or a dataset;
        // and the retention's pruning, oldest first.
        for (name, columns) in [
            (
                "audit_event_organization",
                vec![AuditEvent::OrganizationId, AuditEvent::Id],
            ),
            (
                "audit_event_dataset",
                vec![AuditEvent::DatasetId, AuditEvent::Id],
            ),
            ("audit_event_created", vec![AuditEvent::CreatedAt]),
            ("audit_event_actor", vec![AuditEvent::ActorId]),
            ("audit_event_subject", vec![AuditEvent::SubjectId]),
        ] {
            let mut index = Index::create();
            index.name(name).table(AuditEvent::Table);
            for column in columns {
                index.col(column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuditEvent::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum AuditEvent {
    Table,
    Id,
    Action,
    CreatedAt,
    ActorId,
    ActorUsername,
    OrganizationId,
    DatasetId,
    DatasetFullName,
    SubjectId,
    SubjectUsername,
    Role,
    PreviousRole,
}

#[derive(DeriveIden)]
enum Account {
    Table,
    Id,
}
