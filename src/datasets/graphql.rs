//! GraphQL types and resolvers for datasets and collaborators.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;

use entity::{account, collaborator, dataset};

use crate::accounts::User;
use crate::context::ContextExt;
use crate::eager::{Boxed, Eager};
use crate::error::{ApiError, ApiResult};
use crate::loaders::{AccountId, CollaboratorKey, MembershipKey};
use crate::newtypes::DatasetName;
use crate::node::AccountInterface;
use crate::pages::{CollaboratorPage, DatasetPage};
use crate::policy::{DatasetAction, dataset_allows};
use crate::relay::{ConnectionTotal, KeyConnection, NodeKind, PageArgs, global_id, load_page};
use crate::roles::DatasetRole;

/// A page of datasets.
pub type DatasetConnection = KeyConnection<Dataset>;
/// A page of a dataset's collaborators.
pub type CollaboratorConnection = KeyConnection<Collaborator>;

/// The viewer's effective role on `dataset`, through the request's loaders: the owner acts as
/// `ADMIN`, and so do the admins of an owning organization; anyone else has their
/// collaborator role, if any.
pub(crate) async fn viewer_dataset_role(
    ctx: &Context<'_>,
    dataset: &dataset::Model,
) -> ApiResult<Option<entity::roles::DatasetRole>> {
    let Some(viewer) = ctx.viewer().user_id_within(dataset.owner_id) else {
        return Ok(None);
    };
    // An account id is a user's or an organization's, never both: owning it means being it.
    let owner_admin = dataset.owner_id == viewer
        || ctx
            .load(MembershipKey {
                organization_id: dataset.owner_id,
                user_id: viewer,
            })
            .await?
            .is_some_and(|m| crate::policy::administers_datasets(Some(m.role)));
    let collaborator = if owner_admin {
        None
    } else {
        ctx.load(CollaboratorKey {
            dataset_id: dataset.id,
            user_id: viewer,
        })
        .await?
        .map(|c| c.role)
    };
    Ok(crate::policy::effective_dataset_role(
        owner_admin,
        collaborator,
    ))
}

/// The datasets `owner` owns that the viewer may see, one page of them in name order
/// (batched with every other owner's page in the request; visibility is decided in SQL).
pub(crate) fn owned_datasets<'a>(
    ctx: &'a Context<'_>,
    owner: i64,
    args: &'a PageArgs,
) -> BoxFuture<'a, ApiResult<DatasetConnection>> {
    load_page(
        ctx,
        args,
        DatasetPage::of(owner, args),
        ConnectionTotal::Datasets(owner),
        |d: dataset::Model| (d.name_key.clone(), Dataset(d)),
    )
}

/// A dataset, owned by a user or an organization, with per-dataset collaborator roles.
pub struct Dataset(pub dataset::Model);

impl Dataset {
    async fn owner_account(&self, ctx: &Context<'_>) -> ApiResult<account::Model> {
        ctx.load(AccountId(self.0.owner_id))
            .await?
            .ok_or_else(|| ApiError::internal("dataset without its owner"))
    }

    /// Whether the viewer may see this dataset.
    pub(crate) async fn visible(&self, ctx: &Context<'_>) -> ApiResult<bool> {
        if self.0.public {
            return Ok(true);
        }
        let role = viewer_dataset_role(ctx, &self.0).await?;
        Ok(dataset_allows(role, self.0.public, DatasetAction::See))
    }
}

/// A dataset, owned by a user or an organization, with per-dataset collaborator roles.
#[Object]
impl Dataset {
    /// The global ID of this dataset (Relay `Node`).
    pub async fn id(&self) -> ID {
        global_id(NodeKind::Dataset, self.0.id)
    }

    /// The name, unique case-insensitively per owner.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// `owner/name`, e.g. `acme/street-scenes`.
    async fn full_name(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        let owner = self.owner_account(ctx).await?;
        Ok(format!("{}/{}", owner.username, self.0.name))
    }

    /// The user or organization that owns the dataset.
    async fn owner(&self, ctx: &Context<'_>) -> async_graphql::Result<Boxed<AccountInterface>> {
        Ok(Boxed(AccountInterface::from_account(
            self.owner_account(ctx).await?,
        )))
    }

    /// Free text describing the dataset ("" when none).
    async fn description(&self) -> &str {
        &self.0.description
    }

    /// Whether anyone may see the dataset; a private one is seen only by its owner, the
    /// owning organization's admins and its collaborators.
    async fn public(&self) -> bool {
        self.0.public
    }

    /// When the dataset was created.
    pub async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// The viewer's effective role: `ADMIN` for the owner and the owning organization's
    /// admins, otherwise the viewer's collaborator role; `null` when none.
    async fn viewer_role(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<DatasetRole>> {
        // Boxed, as the other awaits that hold much state here: every field future of a
        // `Dataset` is as large as its largest one (see `crate::eager::Boxed`).
        Ok(Box::pin(viewer_dataset_role(ctx, &self.0))
            .await?
            .map(Into::into))
    }

    /// The dataset's audit log, newest first (its events under every owner it had). The
    /// dataset's `ADMIN`s only: `FORBIDDEN` for others, `UNAUTHENTICATED` without a token.
    #[graphql(complexity = "crate::relay::connection_complexity(first, child_complexity)")]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many events to return (0 to 100, default 20).")] first: Option<i32>,
        #[graphql(desc = "Return events after this cursor (an `endCursor`).")] after: Option<
            String,
        >,
    ) -> async_graphql::Result<crate::audit::AuditEventConnection> {
        if ctx.viewer().user_id_within(self.0.owner_id).is_none() {
            return Err(ApiError::sign_in_required().into());
        }
        let role = Box::pin(viewer_dataset_role(ctx, &self.0)).await?;
        if !dataset_allows(role, self.0.public, DatasetAction::ReadAuditLog) {
            return Err(ApiError::Forbidden(
                "only an ADMIN of the dataset may read its audit log".into(),
            )
            .into());
        }
        let args = PageArgs::parse(first, after)?;
        Ok(crate::audit::dataset_log(ctx, self.0.id, &args).await?)
    }

    /// The collaborators, ordered by username (case-insensitive). Any collaborator (or
    /// the owner, or an admin of the owning organization) may list them: `FORBIDDEN` for
    /// others, `UNAUTHENTICATED` without a token.
    #[graphql(complexity = "crate::relay::connection_complexity(first, child_complexity)")]
    async fn collaborators(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many collaborators to return (0 to 100, default 20).")] first: Option<
            i32,
        >,
        #[graphql(desc = "Return collaborators after this cursor (an `endCursor`).")] after: Option<
            String,
        >,
    ) -> async_graphql::Result<CollaboratorConnection> {
        if ctx.viewer().user_id_within(self.0.owner_id).is_none() {
            return Err(ApiError::sign_in_required().into());
        }
        let role = Box::pin(viewer_dataset_role(ctx, &self.0)).await?;
        if !dataset_allows(role, self.0.public, DatasetAction::ListCollaborators) {
            return Err(ApiError::Forbidden(
                "only the dataset's collaborators may see its collaborators".into(),
            )
            .into());
        }
        let args = PageArgs::parse(first, after)?;
        Ok(load_page(
            ctx,
            &args,
            CollaboratorPage::of(self.0.id, &args),
            ConnectionTotal::Collaborators(self.0.id),
            |c: collaborator::Model| (c.username_key.clone(), Collaborator::new(c)),
        )
        .await?)
    }
}

/// A user's role on a dataset.
pub struct Collaborator {
    row: collaborator::Model,
}

impl Collaborator {
    /// The collaborator entry `row`.
    pub fn new(row: collaborator::Model) -> Self {
        Collaborator { row }
    }
}

/// A user's role on a dataset.
#[Object]
impl Collaborator {
    /// The collaborating user.
    async fn user(&self) -> Eager<User> {
        // The entry carries the user's username: no statement.
        Eager(User::listed(self.row.user_id, self.row.username.clone()))
    }

    /// The dataset.
    async fn dataset(&self, ctx: &Context<'_>) -> async_graphql::Result<Dataset> {
        let dataset = ctx
            .load(crate::loaders::DatasetId(self.row.dataset_id))
            .await?
            .ok_or_else(|| ApiError::internal("collaborator without its dataset"))?;
        Ok(Dataset(dataset))
    }

    /// The collaborator's role on the dataset.
    async fn role(&self) -> DatasetRole {
        self.row.role.into()
    }
}

/// Queries about datasets.
#[derive(Default)]
pub struct DatasetQuery;

#[Object]
impl DatasetQuery {
    /// The dataset with this full name (`owner/name`, any case), or `null` when there is none
    /// or the viewer may not see it.
    async fn dataset(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "`owner/name`, e.g. `acme/street-scenes`.")] full_name: String,
    ) -> async_graphql::Result<Option<Dataset>> {
        let Some(located) = super::find_dataset(&ctx.reader(), &full_name).await? else {
            return Ok(None);
        };
        let dataset = Dataset(located.dataset);
        Ok(dataset.visible(ctx).await?.then_some(dataset))
    }
}

/// Input of `createDataset`.
#[derive(InputObject)]
pub struct CreateDatasetInput {
    /// The owner's username: the viewer (the default) or an organization the viewer
    /// administers.
    pub owner: Option<String>,
    /// 1–100 ASCII letters, digits, `-`, `_` and `.`; not `.` or `..`; unique
    /// case-insensitively per owner.
    pub name: String,
    /// Free text.
    #[graphql(default)]
    pub description: String,
    /// Whether anyone may see the dataset.
    #[graphql(default = false)]
    pub public: bool,
}

/// Result of `createDataset`.
#[derive(SimpleObject)]
pub struct CreateDatasetPayload {
    /// The new dataset.
    pub dataset: Dataset,
}

/// Input of `updateDataset`. An omitted field is left unchanged.
#[derive(InputObject)]
pub struct UpdateDatasetInput {
    /// The dataset's full name (`owner/name`).
    pub dataset: String,
    /// The new description.
    pub description: Option<String>,
    /// The new visibility.
    pub public: Option<bool>,
}

/// Result of `updateDataset`.
#[derive(SimpleObject)]
pub struct UpdateDatasetPayload {
    /// The updated dataset.
    pub dataset: Dataset,
}

/// Input of `deleteDataset`.
#[derive(InputObject)]
pub struct DeleteDatasetInput {
    /// The dataset's full name (`owner/name`).
    pub dataset: String,
}

/// Result of `deleteDataset`.
#[derive(SimpleObject)]
pub struct DeleteDatasetPayload {
    /// The global ID the deleted dataset had.
    pub deleted_dataset_id: ID,
}

/// Input of `addCollaborator`.
#[derive(InputObject)]
pub struct AddCollaboratorInput {
    /// The dataset's full name (`owner/name`).
    pub dataset: String,
    /// The user to add. On an organization's dataset they need not be a member of it (an
    /// outside collaborator).
    pub username: String,
    /// Their role.
    #[graphql(default_with = "DatasetRole::Labeler")]
    pub role: DatasetRole,
}

/// Result of `addCollaborator`.
#[derive(SimpleObject)]
pub struct AddCollaboratorPayload {
    /// The new collaborator entry.
    pub collaborator: Collaborator,
}

/// Input of `updateCollaborator`.
#[derive(InputObject)]
pub struct UpdateCollaboratorInput {
    /// The dataset's full name (`owner/name`).
    pub dataset: String,
    /// The collaborator's username.
    pub username: String,
    /// The new role.
    pub role: DatasetRole,
}

/// Result of `updateCollaborator`.
#[derive(SimpleObject)]
pub struct UpdateCollaboratorPayload {
    /// The updated collaborator entry.
    pub collaborator: Collaborator,
}

/// Input of `removeCollaborator`.
#[derive(InputObject)]
pub struct RemoveCollaboratorInput {
    /// The dataset's full name (`owner/name`).
    pub dataset: String,
    /// The collaborator's username.
    pub username: String,
}

/// Result of `removeCollaborator`.
#[derive(SimpleObject)]
pub struct RemoveCollaboratorPayload {
    /// The dataset.
    pub dataset: Dataset,
}

/// Input of `cloneDataset`.
#[derive(InputObject)]
pub struct CloneDatasetInput {
    /// The source dataset's full name: public, or one the viewer administers.
    pub dataset: String,
    /// The new owner: the viewer (the default) or an organization the viewer administers.
    pub owner: Option<String>,
    /// The new name; default `<name>-clone`.
    pub name: Option<String>,
}

/// Result of `cloneDataset`.
#[derive(SimpleObject)]
pub struct CloneDatasetPayload {
    /// The new dataset.
    pub dataset: Dataset,
}

/// Input of `transferDataset`.
#[derive(InputObject)]
pub struct TransferDatasetInput {
    /// The dataset's full name; the viewer must be its ADMIN.
    pub dataset: String,
    /// The new owner: the viewer or an organization the viewer administers.
    pub new_owner: String,
}

/// Result of `transferDataset`.
#[derive(SimpleObject)]
pub struct TransferDatasetPayload {
    /// The dataset under its new owner.
    pub dataset: Dataset,
}

/// Mutations about datasets and collaborators.
#[derive(Default)]
pub struct DatasetMutation;

#[Object]
impl DatasetMutation {
    /// Creates a dataset under the viewer or an organization they administer. In an
    /// organization, every member with a default dataset role becomes a collaborator with
    /// that role; the creator is always added as `ADMIN`.
    async fn create_dataset(
        &self,
        ctx: &Context<'_>,
        input: CreateDatasetInput,
    ) -> async_graphql::Result<CreateDatasetPayload> {
        let actor = ctx.viewer().actor()?;
        let name = DatasetName::parse("name", &input.name)?;
        let located = super::create_dataset(
            ctx.db(),
            actor,
            input.owner.as_deref(),
            name,
            input.description,
            input.public,
        )
        .await?;
        Ok(CreateDatasetPayload {
            dataset: Dataset(located.dataset),
        })
    }

    /// Updates a dataset's description or visibility. Its ADMINs only.
    async fn update_dataset(
        &self,
        ctx: &Context<'_>,
        input: UpdateDatasetInput,
    ) -> async_graphql::Result<UpdateDatasetPayload> {
        let actor = ctx.viewer().actor()?;
        let located = super::update_dataset(
            ctx.db(),
            actor,
            &input.dataset,
            input.description,
            input.public,
        )
        .await?;
        Ok(UpdateDatasetPayload {
            dataset: Dataset(located.dataset),
        })
    }

    /// Deletes a dataset. Its ADMINs only.
    async fn delete_dataset(
        &self,
        ctx: &Context<'_>,
        input: DeleteDatasetInput,
    ) -> async_graphql::Result<DeleteDatasetPayload> {
        let actor = ctx.viewer().actor()?;
        let id = super::delete_dataset(ctx.db(), actor, &input.dataset).await?;
        Ok(DeleteDatasetPayload {
            deleted_dataset_id: global_id(NodeKind::Dataset, id),
        })
    }

    /// Adds a collaborator. MANAGERs and ADMINs; a MANAGER may not grant `ADMIN`.
    async fn add_collaborator(
        &self,
        ctx: &Context<'_>,
        input: AddCollaboratorInput,
    ) -> async_graphql::Result<AddCollaboratorPayload> {
        let actor = ctx.viewer().actor()?;
        let row = super::add_collaborator(
            ctx.db(),
            actor,
            &input.dataset,
            &input.username,
            input.role.into(),
        )
        .await?;
        Ok(AddCollaboratorPayload {
            collaborator: Collaborator::new(row),
        })
    }

    /// Changes a collaborator's role. MANAGERs and ADMINs; a MANAGER may not grant or change
    /// `ADMIN`.
    async fn update_collaborator(
        &self,
        ctx: &Context<'_>,
        input: UpdateCollaboratorInput,
    ) -> async_graphql::Result<UpdateCollaboratorPayload> {
        let actor = ctx.viewer().actor()?;
        let row = super::update_collaborator(
            ctx.db(),
            actor,
            &input.dataset,
            &input.username,
            input.role.into(),
        )
        .await?;
        Ok(UpdateCollaboratorPayload {
            collaborator: Collaborator::new(row),
        })
    }

    /// Removes a collaborator. MANAGERs and ADMINs; a MANAGER may not remove an `ADMIN`.
    async fn remove_collaborator(
        &self,
        ctx: &Context<'_>,
        input: RemoveCollaboratorInput,
    ) -> async_graphql::Result<RemoveCollaboratorPayload> {
        let actor = ctx.viewer().actor()?;
        let located =
            super::remove_collaborator(ctx.db(), actor, &input.dataset, &input.username).await?;
        Ok(RemoveCollaboratorPayload {
            dataset: Dataset(located.dataset),
        })
    }

    /// Clones a public dataset, or one the viewer administers, into the viewer's account or
    /// an organization they administer. Description and visibility are copied;
    /// collaborators follow the creation fan-out.
    async fn clone_dataset(
        &self,
        ctx: &Context<'_>,
        input: CloneDatasetInput,
    ) -> async_graphql::Result<CloneDatasetPayload> {
        let actor = ctx.viewer().actor()?;
        let name = input
            .name
            .as_deref()
            .map(|n| DatasetName::parse("name", n))
            .transpose()?;
        let located = super::clone_dataset(
            ctx.db(),
            actor,
            &input.dataset,
            input.owner.as_deref(),
            name,
        )
        .await?;
        Ok(CloneDatasetPayload {
            dataset: Dataset(located.dataset),
        })
    }

    /// Moves a dataset to another owner: the viewer must be its ADMIN, and the new owner the
    /// viewer or an organization they administer; the name must be free there.
    async fn transfer_dataset(
        &self,
        ctx: &Context<'_>,
        input: TransferDatasetInput,
    ) -> async_graphql::Result<TransferDatasetPayload> {
        let actor = ctx.viewer().actor()?;
        let located =
            super::transfer_dataset(ctx.db(), actor, &input.dataset, &input.new_owner).await?;
        Ok(TransferDatasetPayload {
            dataset: Dataset(located.dataset),
        })
    }
}
