// The API story (API.md) with a real client library (urql) and the generated typed
// documents, against a live orgql this test starts itself.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import {
  AddCollaboratorDocument,
  AddMemberDocument,
  ChangePasswordDocument,
  CloneDatasetDocument,
  CreateApiTokenDocument,
  CreateDatasetDocument,
  CreateOrganizationDocument,
  DatasetCollaboratorsDocument,
  DatasetDocument,
  DeleteAccountDocument,
  DeleteDatasetDocument,
  DeleteOrganizationDocument,
  LeaveOrganizationDocument,
  LogInDocument,
  NodeDocument,
  OrganizationApiTokensDocument,
  OrganizationDocument,
  OrganizationMembersDocument,
  OrganizationEventsDocument,
  ViewerEventsDocument,
  AcceptInvitationDocument,
  DatasetAuditLogDocument,
  DeclineInvitationDocument,
  InviteMemberDocument,
  OrganizationAuditLogDocument,
  OrganizationInvitationsDocument,
  RevokeInvitationDocument,
  ViewerInvitationsDocument,
  OrgqlError,
  RemoveCollaboratorDocument,
  RemoveMemberDocument,
  RevokeApiTokenDocument,
  SignOutEverywhereDocument,
  SignUpDocument,
  TransferDatasetDocument,
  UpdateCollaboratorDocument,
  UpdateDatasetDocument,
  UpdateMemberDocument,
  UpdateOrganizationDocument,
  UserDocument,
  ViewerApiTokensDocument,
  ViewerDocument,
  mutate,
  orgqlClient,
  query,
} from "../src/client.ts";
import { liveClient, subscribe } from "../src/live.ts";
import { startOrgql, type Orgql } from "./orgql.ts";

let server: Orgql;

before(async () => {
  server = await startOrgql();
});

after(async () => {
  await server?.stop();
});

/** Signs a user up and returns a client signed in as them. */
async function signUp(username: string) {
  const { signUp } = await mutate(orgqlClient(server.endpoint), SignUpDocument, {
    input: { username, email: `${username}@example.com`, password: "correct horse battery" },
  });
  assert.equal(signUp.user.username, username);
  assert.ok(signUp.token.length > 20);
  return { token: signUp.token, client: orgqlClient(server.endpoint, signUp.token), id: signUp.user.id };
}

/** Asserts that `promise` is refused with the orgql error `code`. */
async function refused(promise: Promise<unknown>, code: string) {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof OrgqlError, `expected an OrgqlError, got ${String(error)}`);
    assert.deepEqual(error.codes, [code], error.message);
    return true;
  });
}

describe("the API story", () => {
  test("organizations, default dataset roles, fan-out, roles and leaving", async () => {
    const alice = await signUp("alice");
    const bob = await signUp("bob");

    const viewer = await query(alice.client, ViewerDocument, {});
    assert.equal(viewer.viewer.username, "alice");
    assert.equal(viewer.viewer.email, "alice@example.com");

    // Alice creates an organization: she is its first admin.
    const { createOrganization } = await mutate(alice.client, CreateOrganizationDocument, {
      input: { username: "acme", displayName: "Acme Corp" },
    });
    assert.equal(createOrganization.organization.username, "acme");
    assert.equal(createOrganization.organization.viewerRole, "ADMIN");

    // She adds Bob with a default dataset role.
    const { addMember } = await mutate(alice.client, AddMemberDocument, {
      input: { organization: "acme", username: "bob", defaultDatasetRole: "REVIEWER" },
    });
    assert.equal(addMember.member.role, "MEMBER");
    assert.equal(addMember.member.defaultDatasetRole, "REVIEWER");

    // A private dataset of the organization: Bob is fanned out as a REVIEWER.
    const { createDataset } = await mutate(alice.client, CreateDatasetDocument, {
      input: { owner: "acme", name: "street-scenes", description: "Streets", public: false },
    });
    assert.equal(createDataset.dataset.fullName, "acme/street-scenes");
    assert.equal(createDataset.dataset.public, false);
    assert.equal(createDataset.dataset.viewerRole, "ADMIN");
    assert.equal(createDataset.dataset.owner.__typename, "Organization");

    const seen = await query(bob.client, DatasetDocument, { fullName: "acme/street-scenes" });
    assert.equal(seen.dataset?.viewerRole, "REVIEWER");
    const collaborators = await query(bob.client, DatasetCollaboratorsDocument, {
      fullName: "acme/street-scenes",
    });
    assert.deepEqual(
      collaborators.dataset?.collaborators.nodes.map((c) => [c.user.username, c.role]),
      [
        ["alice", "ADMIN"],
        ["bob", "REVIEWER"],
      ],
    );
    const bobsView = await query(bob.client, OrganizationDocument, { username: "acme" });
    assert.equal(bobsView.organization?.viewerRole, "MEMBER");
    assert.equal(bobsView.organization?.datasets.totalCount, 1);

    // Bob is a MEMBER: admin actions are FORBIDDEN.
    await refused(
      mutate(bob.client, AddMemberDocument, { input: { organization: "acme", username: "alice" } }),
      "FORBIDDEN",
    );
    await refused(
      mutate(bob.client, UpdateOrganizationDocument, {
        input: { organization: "acme", displayName: "Bob's now" },
      }),
      "FORBIDDEN",
    );
    await refused(
      mutate(bob.client, CreateDatasetDocument, { input: { owner: "acme", name: "bobs" } }),
      "FORBIDDEN",
    );

    // The last admin cannot leave.
    await refused(
      mutate(alice.client, LeaveOrganizationDocument, { input: { organization: "acme" } }),
      "CONFLICT",
    );

    // Bob leaves and loses access: the private dataset no longer exists for him.
    const { leaveOrganization } = await mutate(bob.client, LeaveOrganizationDocument, {
      input: { organization: "acme" },
    });
    assert.equal(leaveOrganization.organization.username, "acme");
    assert.equal(leaveOrganization.organization.viewerRole, null);
    const gone = await query(bob.client, DatasetDocument, { fullName: "acme/street-scenes" });
    assert.equal(gone.dataset, null);
    await refused(query(bob.client, OrganizationMembersDocument, { username: "acme" }), "FORBIDDEN");
    const after = await query(alice.client, DatasetCollaboratorsDocument, {
      fullName: "acme/street-scenes",
    });
    assert.deepEqual(
      after.dataset?.collaborators.nodes.map((c) => c.user.username),
      ["alice"],
    );

    // Anonymous: the organization is visible, its members are not.
    const anonymous = orgqlClient(server.endpoint);
    const publicView = await query(anonymous, OrganizationDocument, { username: "acme" });
    assert.equal(publicView.organization?.displayName, "Acme Corp");
    assert.equal(publicView.organization?.datasets.totalCount, 0);
    await refused(query(anonymous, OrganizationMembersDocument, { username: "acme" }), "UNAUTHENTICATED");
    await refused(query(anonymous, ViewerDocument, {}), "UNAUTHENTICATED");
  });

  test("every other operation, typed end to end", async () => {
    const carol = await signUp("carol");
    const dave = await signUp("dave");

    // logIn by username and by email.
    const byName = await mutate(orgqlClient(server.endpoint), LogInDocument, {
      input: { username: "carol", password: "correct horse battery" },
    });
    assert.equal(byName.logIn.user.username, "carol");
    const byEmail = await mutate(orgqlClient(server.endpoint), LogInDocument, {
      input: { username: "CAROL@example.com", password: "correct horse battery" },
    });
    assert.equal(byEmail.logIn.user.id, carol.id);
    await refused(
      mutate(orgqlClient(server.endpoint), LogInDocument, {
        input: { username: "carol", password: "wrong password" },
      }),
      "UNAUTHENTICATED",
    );

    // user and node.
    const user = await query(dave.client, UserDocument, { username: "CAROL" });
    assert.equal(user.user?.username, "carol");
    assert.equal(user.user?.email, null, "only the user themself sees the email");
    const node = await query(dave.client, NodeDocument, { id: carol.id });
    assert.equal(node.node?.__typename, "User");
    assert.equal(node.node?.__typename === "User" && node.node.username, "carol");

    // Organization settings and members.
    await mutate(carol.client, CreateOrganizationDocument, { input: { username: "globex" } });
    const updated = await mutate(carol.client, UpdateOrganizationDocument, {
      input: { organization: "globex", displayName: "Globex" },
    });
    assert.equal(updated.updateOrganization.organization.displayName, "Globex");
    await mutate(carol.client, AddMemberDocument, { input: { organization: "globex", username: "dave" } });
    const promoted = await mutate(carol.client, UpdateMemberDocument, {
      input: { organization: "globex", username: "dave", role: "ADMIN", defaultDatasetRole: "VIEWER" },
    });
    assert.equal(promoted.updateMember.member.role, "ADMIN");
    assert.equal(promoted.updateMember.member.defaultDatasetRole, "VIEWER");
    const members = await query(dave.client, OrganizationMembersDocument, { username: "globex", first: 1 });
    assert.equal(members.organization?.members.totalCount, 2);
    assert.equal(members.organization?.members.pageInfo.hasNextPage, true);
    const next = await query(dave.client, OrganizationMembersDocument, {
      username: "globex",
      first: 1,
      after: members.organization?.members.pageInfo.endCursor ?? null,
    });
    assert.deepEqual(
      [...(members.organization?.members.edges ?? []), ...(next.organization?.members.edges ?? [])].map(
        (e) => e.node.user.username,
      ),
      ["carol", "dave"],
    );

    // Personal datasets, collaborators, settings, clone, transfer, delete.
    const created = await mutate(carol.client, CreateDatasetDocument, { input: { name: "birds" } });
    assert.equal(created.createDataset.dataset.fullName, "carol/birds");
    const added = await mutate(carol.client, AddCollaboratorDocument, {
      input: { dataset: "carol/birds", username: "dave" },
    });
    assert.equal(added.addCollaborator.collaborator.role, "LABELER");
    const changed = await mutate(carol.client, UpdateCollaboratorDocument, {
      input: { dataset: "carol/birds", username: "dave", role: "MANAGER" },
    });
    assert.equal(changed.updateCollaborator.collaborator.role, "MANAGER");
    await refused(
      mutate(dave.client, UpdateDatasetDocument, { input: { dataset: "carol/birds", public: true } }),
      "FORBIDDEN",
    );
    const removed = await mutate(carol.client, RemoveCollaboratorDocument, {
      input: { dataset: "carol/birds", username: "dave" },
    });
    assert.equal(removed.removeCollaborator.dataset.fullName, "carol/birds");
    assert.equal((await query(dave.client, DatasetDocument, { fullName: "carol/birds" })).dataset, null);
    const published = await mutate(carol.client, UpdateDatasetDocument, {
      input: { dataset: "carol/birds", description: "Birds of the park", public: true },
    });
    assert.equal(published.updateDataset.dataset.public, true);

    const cloned = await mutate(dave.client, CloneDatasetDocument, { input: { dataset: "carol/birds" } });
    assert.equal(cloned.cloneDataset.dataset.fullName, "dave/birds-clone");
    assert.equal(cloned.cloneDataset.dataset.description, "Birds of the park");
    const listed = await query(carol.client, UserDocument, { username: "dave" });
    assert.deepEqual(listed.user?.datasets.nodes.map((d) => d.fullName), ["dave/birds-clone"]);

    const moved = await mutate(carol.client, TransferDatasetDocument, {
      input: { dataset: "carol/birds", newOwner: "globex" },
    });
    assert.equal(moved.transferDataset.dataset.fullName, "globex/birds");
    const deleted = await mutate(dave.client, DeleteDatasetDocument, { input: { dataset: "globex/birds" } });
    assert.equal(deleted.deleteDataset.deletedDatasetId, moved.transferDataset.dataset.id);

    // Members leave or are removed; the organization is deleted.
    await mutate(carol.client, RemoveMemberDocument, { input: { organization: "globex", username: "carol" } });
    await refused(
      mutate(carol.client, UpdateOrganizationDocument, { input: { organization: "globex", displayName: null } }),
      "FORBIDDEN",
    );
    const { deleteOrganization } = await mutate(dave.client, DeleteOrganizationDocument, {
      input: { organization: "globex" },
    });
    assert.ok(deleteOrganization.deletedOrganizationId);
    assert.equal((await query(dave.client, OrganizationDocument, { username: "globex" })).organization, null);
  });

  test("API tokens for scripts, and the account controls", async () => {
    const erin = await signUp("erin");
    const frank = await signUp("frank");
    await mutate(erin.client, CreateOrganizationDocument, { input: { username: "initech" } });
    await mutate(erin.client, AddMemberDocument, { input: { organization: "initech", username: "frank" } });

    // A pipeline's token: created once with a sign-in token, its secret shown this once.
    const { createApiToken } = await mutate(erin.client, CreateApiTokenDocument, {
      input: { name: "nightly export", scopes: ["READ", "WRITE"], expiresInDays: 30 },
    });
    assert.match(createApiToken.token, /^orgql_pat_[A-Za-z0-9_-]{43,}$/);
    assert.deepEqual(createApiToken.apiToken.scopes, ["READ", "WRITE"]);
    assert.equal(createApiToken.apiToken.lastUsedAt, null);
    const script = orgqlClient(server.endpoint, createApiToken.token);
    assert.equal((await query(script, ViewerDocument, {})).viewer.username, "erin");
    const made = await mutate(script, CreateDatasetDocument, { input: { owner: "initech", name: "exports" } });
    assert.equal(made.createDataset.dataset.fullName, "initech/exports");
    // Managing tokens and the account needs a person.
    await refused(
      mutate(script, CreateApiTokenDocument, { input: { name: "another", scopes: ["READ"] } }),
      "FORBIDDEN",
    );

    // frank's READ token restricted to initech: the organization's admin sees and revokes it.
    const restricted = await mutate(frank.client, CreateApiTokenDocument, {
      input: { name: "labeler sync", scopes: ["READ"], organization: "initech" },
    });
    assert.equal(restricted.createApiToken.apiToken.organization?.username, "initech");
    const reader = orgqlClient(server.endpoint, restricted.createApiToken.token);
    const inside = await query(reader, OrganizationMembersDocument, { username: "initech", first: 10 });
    assert.equal(inside.organization?.members.totalCount, 2);
    await refused(query(reader, ViewerDocument, {}), "UNAUTHENTICATED");
    await refused(
      mutate(reader, CreateDatasetDocument, { input: { owner: "initech", name: "never" } }),
      "FORBIDDEN",
    );
    const listed = await query(erin.client, OrganizationApiTokensDocument, { username: "initech" });
    assert.deepEqual(
      listed.organization?.apiTokens.nodes.map((t) => [t.name, t.user.username]),
      [["labeler sync", "frank"]],
    );
    const { revokeApiToken } = await mutate(erin.client, RevokeApiTokenDocument, {
      input: { id: restricted.createApiToken.apiToken.id },
    });
    assert.equal(revokeApiToken.revokedApiTokenId, restricted.createApiToken.apiToken.id);
    await refused(query(reader, OrganizationDocument, { username: "initech" }), "UNAUTHENTICATED");
    const mine = await query(frank.client, ViewerApiTokensDocument, {});
    assert.equal(mine.viewer.apiTokens.totalCount, 0);

    // erin's list; then a new password ends her other sessions, not her tokens.
    const erins = await query(erin.client, ViewerApiTokensDocument, { first: 10 });
    assert.deepEqual(erins.viewer.apiTokens.nodes.map((t) => t.name), ["nightly export"]);
    const { changePassword } = await mutate(erin.client, ChangePasswordDocument, {
      input: { currentPassword: "correct horse battery", newPassword: "battery staple horse" },
    });
    await refused(query(erin.client, ViewerDocument, {}), "UNAUTHENTICATED");
    const erinAgain = orgqlClient(server.endpoint, changePassword.token);
    assert.equal((await query(erinAgain, ViewerDocument, {})).viewer.username, "erin");
    assert.equal((await query(script, ViewerDocument, {})).viewer.username, "erin");

    // frank signs out everywhere, then deletes his account; his name is free again.
    const frankAgain = await mutate(orgqlClient(server.endpoint), LogInDocument, {
      input: { username: "frank", password: "correct horse battery" },
    });
    const signedOut = await mutate(frank.client, SignOutEverywhereDocument, { input: {} });
    assert.equal(signedOut.signOutEverywhere.user.username, "frank");
    await refused(query(orgqlClient(server.endpoint, frankAgain.logIn.token), ViewerDocument, {}), "UNAUTHENTICATED");
    const fresh = await mutate(orgqlClient(server.endpoint), LogInDocument, {
      input: { username: "frank", password: "correct horse battery" },
    });
    const frankNow = orgqlClient(server.endpoint, fresh.logIn.token);
    const { deleteAccount } = await mutate(frankNow, DeleteAccountDocument, {
      input: { password: "correct horse battery" },
    });
    assert.equal(deleteAccount.deletedUserId, frank.id);
    assert.equal((await query(erinAgain, UserDocument, { username: "frank" })).user, null);
    await signUp("frank");
  });

  test("invitations and the audit log", async () => {
    const gina = await signUp("gina");
    const hal = await signUp("hal");
    await mutate(gina.client, CreateOrganizationDocument, { input: { username: "umbrella" } });

    const { inviteMember } = await mutate(gina.client, InviteMemberDocument, {
      input: { organization: "umbrella", username: "hal", defaultDatasetRole: "VIEWER" },
    });
    assert.equal(inviteMember.invitation.state, "PENDING");
    assert.equal(inviteMember.invitation.inviter?.username, "gina");
    const pending = await query(hal.client, ViewerInvitationsDocument, {});
    assert.deepEqual(pending.viewer.invitations.nodes.map((i) => i.organization.username), ["umbrella"]);
    await refused(
      mutate(gina.client, AcceptInvitationDocument, { input: { id: inviteMember.invitation.id } }),
      "FORBIDDEN",
    );
    const { acceptInvitation } = await mutate(hal.client, AcceptInvitationDocument, {
      input: { id: inviteMember.invitation.id },
    });
    assert.equal(acceptInvitation.member.role, "MEMBER");
    assert.equal(acceptInvitation.member.defaultDatasetRole, "VIEWER");

    // A second invitation, declined; a third, revoked.
    const ivy = await signUp("ivy");
    const second = await mutate(gina.client, InviteMemberDocument, { input: { organization: "umbrella", username: "ivy" } });
    const declined = await mutate(ivy.client, DeclineInvitationDocument, { input: { id: second.inviteMember.invitation.id } });
    assert.equal(declined.declineInvitation.invitation.state, "DECLINED");
    const third = await mutate(gina.client, InviteMemberDocument, { input: { organization: "umbrella", username: "ivy" } });
    const revoked = await mutate(gina.client, RevokeInvitationDocument, { input: { id: third.inviteMember.invitation.id } });
    assert.equal(revoked.revokeInvitation.invitation.state, "REVOKED");
    const listed = await query(gina.client, OrganizationInvitationsDocument, { username: "umbrella", state: null });
    assert.deepEqual(listed.organization?.invitations.nodes.map((i) => i.state), ["REVOKED", "DECLINED", "ACCEPTED"]);

    // The log, newest first, filtered by action and by actor.
    await mutate(gina.client, CreateDatasetDocument, { input: { owner: "umbrella", name: "cells" } });
    const log = await query(gina.client, OrganizationAuditLogDocument, { username: "umbrella", first: 3 });
    assert.deepEqual(log.organization?.auditLog.nodes.map((e) => e.action), [
      "COLLABORATOR_ADDED",
      "COLLABORATOR_ADDED",
      "DATASET_CREATED",
    ]);
    assert.equal(log.organization?.auditLog.pageInfo.hasNextPage, true);
    const byHal = await query(gina.client, OrganizationAuditLogDocument, { username: "umbrella", actor: "hal" });
    assert.deepEqual(byHal.organization?.auditLog.nodes.map((e) => e.action), ["INVITATION_ACCEPTED"]);
    const invites = await query(gina.client, OrganizationAuditLogDocument, {
      username: "umbrella",
      actions: ["INVITATION_CREATED"],
    });
    assert.equal(invites.organization?.auditLog.totalCount, 3);
    const datasetLog = await query(gina.client, DatasetAuditLogDocument, { fullName: "umbrella/cells" });
    assert.equal(datasetLog.dataset?.auditLog.totalCount, 3);
    await refused(query(hal.client, OrganizationAuditLogDocument, { username: "umbrella" }), "FORBIDDEN");
  });

  test("live updates: a subscriber on one instance sees a change sent to another", async () => {
    // A second orgql on the same database: the subscriber's instance learns of the change
    // from the committed audit log.
    const second = await startOrgql({ database: server.database });
    try {
      const ann = await signUp("live-ann");
      const ben = await signUp("live-ben");
      await mutate(ann.client, CreateOrganizationDocument, { input: { username: "live-co" } });
      await mutate(ann.client, AddMemberDocument, { input: { organization: "live-co", username: "live-ben" } });

      const live = liveClient(server.endpoint, ben.token);
      const events = subscribe(live, OrganizationEventsDocument, { organization: "live-co" });
      const mine = subscribe(live, ViewerEventsDocument, {});
      await new Promise((r) => setTimeout(r, 500));

      const annOnSecond = orgqlClient(second.endpoint, ann.token);
      await mutate(annOnSecond, UpdateMemberDocument, {
        input: { organization: "live-co", username: "live-ben", role: "ADMIN" },
      });
      const { organizationEvents } = await events.next();
      assert.equal(organizationEvents.action, "MEMBER_UPDATED");
      assert.equal(organizationEvents.actorUsername, "live-ann");
      assert.equal(organizationEvents.subjectUsername, "live-ben");
      assert.equal(organizationEvents.role, "ADMIN");
      assert.equal(organizationEvents.previousRole, "MEMBER");
      assert.equal(organizationEvents.organization?.username, "live-co");
      const { viewerEvents } = await mine.next();
      assert.equal(viewerEvents.id, organizationEvents.id, "the same event, to the banner too");

      // Removed: no further event, and the subscription ends with FORBIDDEN.
      await mutate(annOnSecond, RemoveMemberDocument, { input: { organization: "live-co", username: "live-ben" } });
      await assert.rejects(events.next(), (error: { codes?: string[] }) => {
        assert.deepEqual(error.codes, ["FORBIDDEN"]);
        return true;
      });
      events.stop();
      mine.stop();
      await live.dispose();
    } finally {
      await second.stop();
    }
  });
});
