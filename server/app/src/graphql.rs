//! `/v1/graphql`: the management model over async-graphql. Resolvers call the same
//! services as REST with the same capability handles, so authorization and audit are
//! identical; errors carry REST's stable `code` in `extensions`. Depth, complexity,
//! alias and size limits refuse abusive documents before anything runs; introspection
//! is for operators only (not tenant secret keys).

use crate::http::auth::Auth;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::Ctx;
use crate::state::AppState;
use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, EmptySubscription, ErrorExtensions, ID, InputObject, Object, Schema, SimpleObject};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use gatehouse_core::access::Principal;
use gatehouse_core::audit::AuditEvent;
use gatehouse_core::audit::RequestContext;
use gatehouse_core::error::ServiceError;
use gatehouse_core::ids::{OrganizationId, TenantId, UserId};
use gatehouse_core::operator::Operator;
use gatehouse_core::org::{Invitation, Membership, Organization, Role};
use gatehouse_core::page::{Page, PageRequest, encode_cursor};
use gatehouse_core::services::Services;
use gatehouse_core::services::audit_log::AuditFilter;
use gatehouse_core::services::orgs::NewOrg;
use gatehouse_core::services::users::NewUser;
use gatehouse_core::signing::SigningKeyRecord;
use gatehouse_core::tenant::Tenant;
use gatehouse_core::user::{User, UserFilter};

/// The schema, built once and shared.
#[derive(Clone)]
pub struct GatehouseSchema(Schema<QueryRoot, MutationRoot, EmptySubscription>);

impl std::fmt::Debug for GatehouseSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GatehouseSchema")
    }
}

/// Deepest selection allowed.
const MAX_DEPTH: usize = 10;
/// Most fields (connections count their page size) per document.
const MAX_COMPLEXITY: usize = 10_000;
/// Most aliased fields per document.
const MAX_ALIASES: usize = 30;
/// Largest document, in bytes.
const MAX_QUERY_BYTES: usize = 32 * 1024;

/// Builds the schema (no per-request data).
pub fn schema() -> GatehouseSchema {
    GatehouseSchema(
        Schema::build(QueryRoot, MutationRoot, EmptySubscription)
            .limit_depth(MAX_DEPTH)
            .limit_complexity(MAX_COMPLEXITY)
            .limit_recursive_depth(32)
            .limit_directives(10)
            .finish(),
    )
}

/// The schema in SDL, as committed in `openapi/gatehouse.graphql`.
pub fn sdl() -> String {
    schema().0.sdl()
}

fn gql(e: ServiceError) -> async_graphql::Error {
    let api = ApiError::from(e);
    let (code, status, detail, fields) = api.parts();
    let fields: Vec<serde_json::Value> =
        fields.iter().map(|f| serde_json::json!({ "field": f.field, "message": f.message })).collect();
    let fields = async_graphql::Value::from_json(serde_json::Value::Array(fields)).unwrap_or_default();
    let has_fields = !matches!(&fields, async_graphql::Value::List(l) if l.is_empty());
    async_graphql::Error::new(detail).extend_with(|_, ext| {
        ext.set("code", code);
        ext.set("status", status);
        if has_fields {
            ext.set("errors", fields.clone());
        }
    })
}

fn refusal(code: &str, message: &str) -> async_graphql::ServerError {
    let mut error = async_graphql::ServerError::new(message, None);
    let mut ext = async_graphql::ErrorExtensionValues::default();
    ext.set("code", code);
    ext.set("status", 400);
    error.extensions = Some(ext);
    error
}

struct Call<'a> {
    services: &'a Services,
    principal: &'a Principal,
    ctx: &'a RequestContext,
}

fn call<'a>(c: &'a Context<'_>) -> async_graphql::Result<Call<'a>> {
    Ok(Call { services: c.data::<Services>()?, principal: c.data::<Principal>()?, ctx: c.data::<RequestContext>()? })
}

fn page(first: Option<i32>, after: Option<String>) -> async_graphql::Result<PageRequest> {
    let limit = first.map(|f| u32::try_from(f).unwrap_or(0));
    PageRequest::parse(limit, after.as_deref()).map_err(gql)
}

fn connection<T, N: async_graphql::OutputType>(
    page: Page<T>,
    after: bool,
    id_of: impl Fn(&T) -> String,
    node: impl Fn(T) -> N,
) -> Connection<String, N> {
    let mut c = Connection::new(after, page.next_cursor.is_some());
    c.edges.extend(page.data.into_iter().map(|item| Edge::new(encode_cursor(&id_of(&item)), node(item))));
    c
}

fn parse_id<T: std::str::FromStr>(field: &str, id: &ID) -> async_graphql::Result<T> {
    id.parse().map_err(|_| gql(ServiceError::invalid(field, "is not an id of the right kind")))
}

/// Root queries.
pub struct QueryRoot;

#[Object]
impl QueryRoot {
    /// Tenants the caller reaches, by id.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn tenants(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, TenantNode>> {
        let c = call(ctx)?;
        let had_after = after.is_some();
        let page = page(first, after)?;
        let tenants = c.services.tenants.list(c.principal, c.ctx, &page).await.map_err(gql)?;
        Ok(connection(tenants, had_after, |t| t.id.to_string(), TenantNode))
    }

    /// Audit events the caller may see, newest first.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
        action: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, AuditEventNode>> {
        let c = call(ctx)?;
        let tenant_id = tenant_id.as_ref().map(|t| parse_id::<TenantId>("tenant_id", t)).transpose()?;
        let had_after = after.is_some();
        let page = page(first, after)?;
        let filter = AuditFilter { tenant_id, action, actor_id: None };
        let events = c.services.audit.list(c.principal, c.ctx, filter, &page).await.map_err(gql)?;
        Ok(connection(events, had_after, |e| e.id.to_string(), AuditEventNode))
    }

    /// Operator accounts (operator owners only).
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn operators(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, OperatorNode>> {
        let c = call(ctx)?;
        let op = c.principal.operator().map_err(gql)?;
        let had_after = after.is_some();
        let page = page(first, after)?;
        let operators = c.services.operators.list(&op, &page).await.map_err(gql)?;
        Ok(connection(operators, had_after, |o| o.id.to_string(), OperatorNode))
    }

    /// One tenant (`null` when unknown or out of reach).
    async fn tenant(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<TenantNode>> {
        let c = call(ctx)?;
        let tenant_id: TenantId = parse_id("id", &id)?;
        let access = match c.principal.tenant(&tenant_id) {
            Ok(access) => access,
            Err(ServiceError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(gql(e)),
        };
        match c.services.tenants.get(&access, c.ctx).await {
            Ok(t) => Ok(Some(TenantNode(t))),
            Err(ServiceError::NotFound { .. }) => Ok(None),
            Err(e) => Err(gql(e)),
        }
    }
}

/// A tenant.
pub struct TenantNode(Tenant);

#[Object(name = "Tenant")]
impl TenantNode {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn slug(&self) -> &str {
        self.0.slug.as_str()
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn created_at(&self) -> String {
        rfc3339(self.0.created_at)
    }

    /// The tenant's users, by id.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, UserNode>> {
        let c = call(ctx)?;
        let access = c.principal.tenant(&self.0.id).map_err(gql)?;
        let had_after = after.is_some();
        let page = page(first, after)?;
        let filter = UserFilter { email_prefix: None, status: None, created_after: None, created_before: None };
        let users = c.services.users.list(&access, c.ctx, filter, &page).await.map_err(gql)?;
        Ok(connection(users, had_after, |u| u.id.to_string(), UserNode))
    }

    /// One user (`null` when unknown).
    async fn user(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<UserNode>> {
        let c = call(ctx)?;
        let access = c.principal.tenant(&self.0.id).map_err(gql)?;
        let user_id: UserId = parse_id("id", &id)?;
        match c.services.users.get(&access, c.ctx, &user_id).await {
            Ok(u) => Ok(Some(UserNode(u))),
            Err(ServiceError::NotFound { .. }) => Ok(None),
            Err(e) => Err(gql(e)),
        }
    }

    /// The tenant's roles: built-ins, then custom ones.
    async fn roles(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<RoleNode>> {
        let c = call(ctx)?;
        let access = c.principal.tenant(&self.0.id).map_err(gql)?;
        Ok(c.services.orgs.roles(&access).await.map_err(gql)?.into_iter().map(RoleNode).collect())
    }

    /// The tenant's published signing keys.
    async fn signing_keys(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<SigningKeyNode>> {
        let c = call(ctx)?;
        let access = c.principal.tenant(&self.0.id).map_err(gql)?;
        Ok(c.services.keys.list(&access, c.ctx).await.map_err(gql)?.into_iter().map(SigningKeyNode).collect())
    }

    /// The tenant's organizations, by id.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn organizations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, OrganizationNode>> {
        let c = call(ctx)?;
        let access = c.principal.tenant(&self.0.id).map_err(gql)?;
        let had_after = after.is_some();
        let page = page(first, after)?;
        let orgs = c.services.orgs.list(&access, &Default::default(), &page).await.map_err(gql)?;
        let tenant_id = self.0.id.clone();
        Ok(connection(orgs, had_after, |o| o.id.to_string(), move |o| OrganizationNode(o, tenant_id.clone())))
    }
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// A user of a tenant.
pub struct UserNode(User);

#[Object(name = "User")]
impl UserNode {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn email(&self) -> &str {
        self.0.email.as_str()
    }
    async fn email_verified(&self) -> bool {
        self.0.email_verified
    }
    async fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }
    async fn status(&self) -> &'static str {
        self.0.status.as_str()
    }
    async fn created_at(&self) -> String {
        rfc3339(self.0.created_at)
    }
    /// The user's live sessions, oldest first.
    async fn sessions(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<SessionNode>> {
        let c = call(ctx)?;
        let access = c.principal.tenant(&self.0.tenant_id).map_err(gql)?;
        let sessions = c.services.users.sessions(&access, c.ctx, &self.0.id).await.map_err(gql)?;
        Ok(sessions.into_iter().map(SessionNode).collect())
    }
}

/// A user's session.
pub struct SessionNode(gatehouse_core::session::Session);

#[Object(name = "Session")]
impl SessionNode {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn amr(&self) -> &[String] {
        &self.0.amr
    }
    async fn organization_id(&self) -> Option<ID> {
        self.0.org_id.as_ref().map(|o| ID(o.to_string()))
    }
    async fn created_at(&self) -> String {
        rfc3339(self.0.created_at)
    }
    async fn last_seen_at(&self) -> String {
        rfc3339(self.0.last_seen_at)
    }
    async fn expires_at(&self) -> String {
        rfc3339(self.0.expires_at)
    }
}

/// An organization of a tenant.
pub struct OrganizationNode(Organization, TenantId);

#[Object(name = "Organization")]
impl OrganizationNode {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn slug(&self) -> &str {
        &self.0.slug
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn parent_id(&self) -> Option<ID> {
        self.0.parent_id.as_ref().map(|p| ID(p.to_string()))
    }
    async fn depth(&self) -> u32 {
        self.0.depth
    }
    async fn created_at(&self) -> String {
        rfc3339(self.0.created_at)
    }

    /// Invitations, newest first.
    async fn invitations(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<InvitationNode>> {
        let c = call(ctx)?;
        let access = c.principal.tenant(&self.1).map_err(gql)?;
        let list = c.services.orgs.invitations(&access, &self.0.id).await.map_err(gql)?;
        Ok(list.into_iter().map(InvitationNode).collect())
    }

    /// Members, by user id.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn members(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, MemberNode>> {
        let c = call(ctx)?;
        let access = c.principal.tenant(&self.1).map_err(gql)?;
        let had_after = after.is_some();
        let page = page(first, after)?;
        let members = c.services.orgs.members(&access, &self.0.id, &page).await.map_err(gql)?;
        let tenant_id = self.1.clone();
        Ok(connection(members, had_after, |m| m.user_id.to_string(), move |m| MemberNode(m, tenant_id.clone())))
    }
}

/// Loads the users of many members at once (one query per batch, not per member).
pub struct UserLoader {
    services: Services,
    principal: Principal,
}

impl async_graphql::dataloader::Loader<(TenantId, UserId)> for UserLoader {
    type Value = User;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[(TenantId, UserId)],
    ) -> Result<std::collections::HashMap<(TenantId, UserId), User>, Self::Error> {
        let mut by_tenant: std::collections::BTreeMap<&TenantId, Vec<UserId>> = Default::default();
        for (tenant, user) in keys {
            by_tenant.entry(tenant).or_default().push(user.clone());
        }
        let mut found = std::collections::HashMap::new();
        for (tenant, ids) in by_tenant {
            let access = self.principal.tenant(tenant).map_err(gql)?;
            for chunk in ids.chunks(100) {
                for user in self.services.users.get_many(&access, chunk).await.map_err(gql)? {
                    found.insert((tenant.clone(), user.id.clone()), user);
                }
            }
        }
        Ok(found)
    }
}

/// A membership.
pub struct MemberNode(Membership, TenantId);

#[Object(name = "Member")]
impl MemberNode {
    async fn user_id(&self) -> ID {
        ID(self.0.user_id.to_string())
    }
    async fn role(&self) -> &str {
        &self.0.role
    }
    async fn joined_at(&self) -> String {
        rfc3339(self.0.created_at)
    }
    /// The member (batched across the page).
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<UserNode>> {
        let loader = ctx.data::<async_graphql::dataloader::DataLoader<UserLoader>>()?;
        Ok(loader.load_one((self.1.clone(), self.0.user_id.clone())).await?.map(UserNode))
    }
}

/// A role.
pub struct RoleNode(Role);

#[Object(name = "Role")]
impl RoleNode {
    async fn key(&self) -> &str {
        &self.0.key
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn permissions(&self) -> &[String] {
        &self.0.permissions
    }
    async fn built_in(&self) -> bool {
        self.0.built_in
    }
}

/// A signing key (public part).
pub struct SigningKeyNode(SigningKeyRecord);

#[Object(name = "SigningKey")]
impl SigningKeyNode {
    /// The key id (`kid`).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn status(&self) -> String {
        serde_json::to_value(self.0.status).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
    }
    async fn created_at(&self) -> String {
        rfc3339(self.0.created_at)
    }
}

/// An invitation.
pub struct InvitationNode(Invitation);

#[Object(name = "Invitation")]
impl InvitationNode {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn email(&self) -> &str {
        &self.0.email
    }
    async fn role(&self) -> &str {
        &self.0.role
    }
    async fn expires_at(&self) -> String {
        rfc3339(self.0.expires_at)
    }
    async fn accepted_at(&self) -> Option<String> {
        self.0.accepted_at.map(rfc3339)
    }
    async fn revoked_at(&self) -> Option<String> {
        self.0.revoked_at.map(rfc3339)
    }
}

/// An audit event.
pub struct AuditEventNode(AuditEvent);

#[Object(name = "AuditEvent")]
impl AuditEventNode {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn action(&self) -> &str {
        &self.0.action
    }
    async fn actor_type(&self) -> &'static str {
        self.0.actor_type.as_str()
    }
    async fn actor_id(&self) -> Option<&str> {
        self.0.actor_id.as_deref()
    }
    async fn tenant_id(&self) -> Option<ID> {
        self.0.tenant_id.as_ref().map(|t| ID(t.to_string()))
    }
    async fn created_at(&self) -> String {
        rfc3339(self.0.created_at)
    }
}

/// An operator account.
pub struct OperatorNode(Operator);

#[Object(name = "Operator")]
impl OperatorNode {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn email(&self) -> &str {
        self.0.email.as_str()
    }
    async fn role(&self) -> &'static str {
        self.0.role.as_str()
    }
    async fn disabled(&self) -> bool {
        self.0.disabled
    }
}

/// A new secret key: the secret is shown this once.
#[derive(Debug, SimpleObject)]
pub struct CreatedSecretKey {
    /// Key id.
    pub id: ID,
    /// The secret (`sk_…`).
    pub secret: String,
}

/// Input of `createOrganization`.
#[derive(Debug, InputObject)]
pub struct CreateOrganizationInput {
    /// The tenant.
    pub tenant_id: ID,
    /// URL name.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Parent organization.
    pub parent_id: Option<ID>,
    /// First owner.
    pub owner_user_id: Option<ID>,
}

/// Input of `createUser`.
#[derive(Debug, InputObject)]
pub struct CreateUserInput {
    /// The tenant.
    pub tenant_id: ID,
    /// Email address.
    pub email: String,
    /// Optional password.
    pub password: Option<String>,
    /// Display name.
    pub name: Option<String>,
}

/// Input of `addMember`.
#[derive(Debug, InputObject)]
pub struct AddMemberInput {
    /// The tenant.
    pub tenant_id: ID,
    /// The organization.
    pub organization_id: ID,
    /// The user.
    pub user_id: ID,
    /// A role key.
    pub role: String,
}

/// What `addMember` answers.
#[derive(Debug, SimpleObject)]
pub struct AddMemberPayload {
    /// The organization.
    pub organization_id: ID,
    /// The member.
    pub user_id: ID,
    /// The role.
    pub role: String,
}

/// Root mutations: the common writes, through the same services as REST.
pub struct MutationRoot;

#[Object]
impl MutationRoot {
    /// Creates a user.
    async fn create_user(&self, ctx: &Context<'_>, input: CreateUserInput) -> async_graphql::Result<UserNode> {
        let c = call(ctx)?;
        let access = c.principal.tenant(&parse_id("tenant_id", &input.tenant_id)?).map_err(gql)?;
        let new = NewUser {
            email: input.email,
            password: input.password.map(gatehouse_core::secret::SecretString::new),
            name: input.name,
            email_verified: false,
            profile: Default::default(),
            public_metadata: None,
            private_metadata: None,
        };
        Ok(UserNode(c.services.users.create(&access, c.ctx, new).await.map_err(gql)?))
    }

    /// Creates an organization.
    async fn create_organization(
        &self,
        ctx: &Context<'_>,
        input: CreateOrganizationInput,
    ) -> async_graphql::Result<OrganizationNode> {
        let c = call(ctx)?;
        let tenant_id: TenantId = parse_id("tenant_id", &input.tenant_id)?;
        let access = c.principal.tenant(&tenant_id).map_err(gql)?;
        let new = NewOrg {
            slug: input.slug,
            name: input.name,
            parent_id: input.parent_id.as_ref().map(|p| parse_id::<OrganizationId>("parent_id", p)).transpose()?,
            owner_user_id: input.owner_user_id.as_ref().map(|u| parse_id::<UserId>("owner_user_id", u)).transpose()?,
            ..Default::default()
        };
        Ok(OrganizationNode(c.services.orgs.create(&access, c.ctx, new).await.map_err(gql)?, tenant_id))
    }

    /// Creates a tenant secret key.
    async fn create_secret_key(
        &self,
        ctx: &Context<'_>,
        tenant_id: ID,
        name: Option<String>,
    ) -> async_graphql::Result<CreatedSecretKey> {
        let c = call(ctx)?;
        let access = c.principal.tenant(&parse_id("tenant_id", &tenant_id)?).map_err(gql)?;
        let issued = c.services.secret_keys.create(&access, c.ctx, name).await.map_err(gql)?;
        Ok(CreatedSecretKey { id: ID(issued.record.id.to_string()), secret: issued.secret.expose().to_owned() })
    }

    /// Rotates the tenant's signing keys; the new key's id.
    async fn rotate_signing_keys(&self, ctx: &Context<'_>, tenant_id: ID) -> async_graphql::Result<ID> {
        let c = call(ctx)?;
        let access = c.principal.tenant(&parse_id("tenant_id", &tenant_id)?).map_err(gql)?;
        Ok(ID(c.services.keys.rotate(&access, c.ctx).await.map_err(gql)?.to_string()))
    }

    /// Adds a member to an organization.
    async fn add_member(&self, ctx: &Context<'_>, input: AddMemberInput) -> async_graphql::Result<AddMemberPayload> {
        let c = call(ctx)?;
        let access = c.principal.tenant(&parse_id("tenant_id", &input.tenant_id)?).map_err(gql)?;
        let org_id: OrganizationId = parse_id("organization_id", &input.organization_id)?;
        let user_id: UserId = parse_id("user_id", &input.user_id)?;
        let m = c.services.orgs.add_member(&access, c.ctx, &org_id, &user_id, &input.role).await.map_err(gql)?;
        Ok(AddMemberPayload {
            organization_id: ID(m.org_id.to_string()),
            user_id: ID(m.user_id.to_string()),
            role: m.role,
        })
    }
}

/// Counts aliased fields in a document (a cheap guard against alias amplification).
fn alias_count(query: &str) -> Result<usize, String> {
    use async_graphql::parser::types::{Selection, SelectionSet};
    fn walk(set: &SelectionSet, n: &mut usize) {
        for item in &set.items {
            match &item.node {
                Selection::Field(f) => {
                    if f.node.alias.is_some() {
                        *n += 1;
                    }
                    walk(&f.node.selection_set.node, n);
                }
                Selection::InlineFragment(i) => walk(&i.node.selection_set.node, n),
                Selection::FragmentSpread(_) => {}
            }
        }
    }
    let doc = async_graphql::parser::parse_query(query).map_err(|e| e.to_string())?;
    let mut n = 0;
    for (_, op) in doc.operations.iter() {
        walk(&op.node.selection_set.node, &mut n);
    }
    for fragment in doc.fragments.values() {
        walk(&fragment.node.selection_set.node, &mut n);
    }
    Ok(n)
}

/// `POST /v1/graphql` with `{"query", "variables"?, "operationName"?}`.
#[utoipa::path(post, path = "/v1/graphql", tag = "graphql", security(("bearer" = [])),
    request_body(content = Object, description = "A GraphQL request"),
    responses((status = 200, description = "A GraphQL response (`data`, `errors` with `extensions.code`)"),
              (status = "4XX", body = crate::http::error::Problem, content_type = "application/problem+json")))]
pub async fn create_graphql(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Ctx(ctx): Ctx,
    body: Bytes,
) -> ApiResult<Json<async_graphql::Response>> {
    let request: async_graphql::Request = serde_json::from_slice(&body)
        .map_err(|_| ApiError::from(ServiceError::invalid("query", "must be a GraphQL request object")))?;
    if request.query.len() > MAX_QUERY_BYTES {
        return Ok(Json(async_graphql::Response::from_errors(vec![refusal(
            "query_too_large",
            "the query is larger than 32 KiB",
        )])));
    }
    match alias_count(&request.query) {
        Ok(n) if n > MAX_ALIASES => {
            return Ok(Json(async_graphql::Response::from_errors(vec![refusal(
                "too_many_aliases",
                "the query uses more than 30 aliases",
            )])));
        }
        _ => {}
    }
    let operator = !matches!(principal, Principal::SecretKey { .. });
    let loader = UserLoader { services: state.services.clone(), principal: principal.clone() };
    let users = async_graphql::dataloader::DataLoader::new(loader, tokio::spawn);
    let mut request = request.data(state.services.clone()).data(principal).data(ctx).data(users);
    if !operator {
        request = request.disable_introspection();
    }
    Ok(Json(state.graphql.0.execute(request).await))
}
