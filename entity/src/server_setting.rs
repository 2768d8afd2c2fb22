//! `server_setting`: small key/value settings the server keeps for itself (e.g. the generated
//! JWT secret, so tokens survive a restart).

use sea_orm::entity::prelude::*;

/// One setting.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "server_setting")]
pub struct Model {
    /// The setting's name.
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    /// Its value.
    pub value: String,
}

/// Relations of `server_setting`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
