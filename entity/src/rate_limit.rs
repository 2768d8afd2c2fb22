//! `rate_limit`: one allowance shared by every instance on the database (see
//! `orgql::ratelimit`).

use sea_orm::entity::prelude::*;

/// The state of one limited thing, e.g. `log_in:account:42`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "rate_limit")]
pub struct Model {
    /// What is limited.
    #[sea_orm(primary_key, auto_increment = false)]
    pub bucket: String,
    /// GCRA's theoretical arrival time, in milliseconds since the epoch: the allowance is
    /// used up while it lies a whole period or more ahead.
    pub tat: i64,
    /// Whether the last attempt was allowed.
    pub allowed: bool,
}

/// Relations of `rate_limit`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
