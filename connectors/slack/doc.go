// Package slack is Roster's connector for Slack: accounts through Slack's
// SCIM 2.0 API (plain net/http), user groups and channels through the Web
// API (github.com/slack-go/slack).
//
// # What it does
//
// Accounts (SCIM, scim_url):
//   - CreateAccount looks the person up by e-mail (filter `email eq "…"`)
//     and, when Slack has no such user, POSTs /Users with userName (the
//     person's, lower-cased and cut to Slack's 21 characters), the e-mail,
//     name, displayName, active=true and externalId = Roster's worker id.
//     An existing user with that e-mail and no externalId (or this
//     worker's) is taken over: reactivated and linked (one PATCH). A user
//     linked to another worker is a Conflict.
//   - SuspendAccount is DELETE /Users/{id}: Slack deactivates the user,
//     which also removes it from every user group and channel (so
//     suspending drops grants, and restoring brings none back).
//   - RestoreAccount is PATCH active=true (and links an unlinked user).
//   - DeleteAccount: Slack cannot delete users. The connector releases the
//     account instead: it deactivates the user and sets its externalId to
//     "released:<worker>". Snapshot does not report released users, so
//     the account is gone from Roster's point of view, while Slack keeps
//     the deactivated user (and its messages). The same worker, rehired,
//     takes the same user back; another worker given the same address is
//     refused with a Conflict rather than handed the leaver's messages.
//
// Accounts are found by their Slack user id when the action carries one,
// else by e-mail (or user name when there is no e-mail).
//
// Entitlements (Web API, api_url), both without roles:
//   - usergroup/HANDLE: the handle is resolved with usergroups.list
//     (cached, and read again at most every 30 s on a miss).
//     usergroups.users.update replaces the whole list, so a grant or
//     revoke reads the list (usergroups.users.list), changes it and writes
//     it back, one change at a time per group within the instance. Slack
//     rejects an empty list, so removing the last member disables the
//     group (usergroups.disable); a disabled group has no members in
//     Snapshot, and the next grant writes the new member alone and enables
//     it again.
//   - channel/NAME: the name is resolved with conversations.list
//     (exclude_archived, cursor pagination, cached like user groups);
//     conversations.invite and conversations.kick, where
//     "already_in_channel" and "not_in_channel" are success. #general
//     cannot be left in Slack: revoking it is a Conflict.
//
// Snapshot reads users from SCIM (startIndex/count pages of 1,000: SCIM
// carries externalId and active, which users.list does not, and its read
// budget is far larger than users.list's tier 2), every user group with
// its members in one usergroups.list call, and the members of each managed
// channel (conversations.members, cursor pagination, several channels at
// once).
//
// Optional capabilities: Checker (auth.test and its X-OAuth-Scopes header,
// and one SCIM read) and MFAReporter (has_2fa from users.list, which Slack
// shows to admins only).
//
// # Settings
//
// See Config: token and scim_token (secret references), usergroups (the
// handles Roster manages; default every group), channels (the channels
// Roster manages; default none — a managed channel loses every member no
// policy names, so each is opted in; "*" manages them all),
// private_channels, api_url, scim_url, max_concurrent_requests, timeout.
//
// # Permissions
//
// A workspace admin's user token (xoxp-…) with users:read,
// usergroups:read, usergroups:write, channels:read, channels:manage (or
// channels:write), plus groups:read and groups:write for private
// channels, and admin for SCIM (Business+ or Enterprise Grid). The token's
// user must be a member of the channels it manages. Check lists what is
// missing.
//
// # How it fails
//
// Open rejects bad settings with an error naming the field, and a secret
// that cannot be resolved (never its value). Snapshot and Apply return
// *connectors.Error values: Invalid, before any I/O, for an action the
// instance cannot take (an unknown kind, a role, a user group or channel
// not listed in the settings, no e-mail to create an account with);
// NotFound for an unknown user group or channel and for a person with no
// account; Conflict when Slack's state forbids the change (a user linked
// to another worker, a deactivated user, an archived channel); Permission
// for a rejected token or a missing scope; RateLimited (with RetryAfter)
// and Transient for 429s and 5xx the shared transport (connectors/httpapi)
// could not ride out. Web API errors arrive as HTTP 200 {"ok":false} and
// are classified by their code. Read-only Web API calls are retried on
// 5xx here, because slack-go POSTs them and the transport retries 5xx for
// GET only. No error contains a token.
package slack
