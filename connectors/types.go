package connectors

import (
	"fmt"
	"sort"
	"strings"
)

// WorkerID is Roster's stable identifier of one worker (employee,
// contractor, vendor). It comes from HR (the employee id or SCIM id) and
// never changes, not even across a rehire.
type WorkerID string

// AccountID is an app's own identifier of an account (a GitHub login, a
// Slack user id, a Google user id, an LDAP DN…).
type AccountID string

// KindAccount is the implicit entitlement kind every connector offers: the
// worker has an account in the app. Its optional role is the account-level
// role (GitHub org "admin", say).
const KindAccount = "account"

// Entitlement is something an app can grant to an account, inside one
// connector instance: a kind ("team", "usergroup", "channel", "group",
// "role"…), the resource it names ("backend", "oncall",
// "eng@piedpiper.com") and an optional role on that resource ("maintainer",
// "MANAGER"). The account itself is Entitlement{Kind: KindAccount}.
//
// Its text form is "kind/resource#role", "kind/resource", "account" or
// "account#role"; ParseEntitlement reads it and String writes it, and no
// other code splits it.
type Entitlement struct {
	Kind     string `json:"kind"`
	Resource string `json:"resource,omitempty"`
	Role     string `json:"role,omitempty"`
}

// Account is the entitlement "has an account", with no role.
var Account = Entitlement{Kind: KindAccount}

// String returns the canonical text form, e.g. "team/backend#maintainer".
func (e Entitlement) String() string {
	var b strings.Builder
	b.WriteString(e.Kind)
	if e.Resource != "" {
		b.WriteByte('/')
		b.WriteString(e.Resource)
	}
	if e.Role != "" {
		b.WriteByte('#')
		b.WriteString(e.Role)
	}
	return b.String()
}

// Key identifies the grantable thing regardless of the role held on it:
// holding "team/backend#member" and wanting "team/backend#maintainer" is
// one entitlement whose role changes, not two.
func (e Entitlement) Key() EntitlementKey {
	return EntitlementKey{Kind: e.Kind, Resource: e.Resource}
}

// IsAccount reports whether e is the account itself.
func (e Entitlement) IsAccount() bool { return e.Kind == KindAccount }

// EntitlementKey is an Entitlement without its role.
type EntitlementKey struct {
	Kind     string
	Resource string
}

// String returns "kind/resource" (or "account").
func (k EntitlementKey) String() string {
	if k.Resource == "" {
		return k.Kind
	}
	return k.Kind + "/" + k.Resource
}

// ParseEntitlement parses the text form written by Entitlement.String.
// The kind is everything before the first "/", the role everything after
// the last "#" (resources such as group e-mail addresses or LDAP DNs may
// contain "/" themselves but never "#"). "account" and "account#admin"
// have no resource; every other kind needs one.
func ParseEntitlement(s string) (Entitlement, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Entitlement{}, fmt.Errorf("empty entitlement")
	}
	var e Entitlement
	rest := s
	if i := strings.LastIndexByte(rest, '#'); i >= 0 {
		e.Role = rest[i+1:]
		rest = rest[:i]
		if e.Role == "" {
			return Entitlement{}, fmt.Errorf("entitlement %q: empty role after '#'", s)
		}
	}
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		e.Kind, e.Resource = rest[:i], rest[i+1:]
		if e.Resource == "" {
			return Entitlement{}, fmt.Errorf("entitlement %q: empty resource after '/'", s)
		}
	} else {
		e.Kind = rest
	}
	if e.Kind == "" {
		return Entitlement{}, fmt.Errorf("entitlement %q: empty kind", s)
	}
	if e.Kind == KindAccount && e.Resource != "" {
		return Entitlement{}, fmt.Errorf("entitlement %q: account takes no resource (use \"account\" or \"account#role\")", s)
	}
	if e.Kind != KindAccount && e.Resource == "" {
		return Entitlement{}, fmt.Errorf("entitlement %q: kind %q needs a resource, as in %q", s, e.Kind, e.Kind+"/NAME")
	}
	return e, nil
}

// Less orders entitlements: the account first, then by kind, resource and
// role. Plans and states use this order so they are deterministic.
func (e Entitlement) Less(o Entitlement) bool {
	if e.IsAccount() != o.IsAccount() {
		return e.IsAccount()
	}
	if e.Kind != o.Kind {
		return e.Kind < o.Kind
	}
	if e.Resource != o.Resource {
		return e.Resource < o.Resource
	}
	return e.Role < o.Role
}

// SortEntitlements sorts in place in the order of Entitlement.Less.
func SortEntitlements(es []Entitlement) {
	sort.Slice(es, func(i, j int) bool { return es[i].Less(es[j]) })
}

// KindSpec declares one entitlement kind a connector instance offers, and
// the roles that may be held on it. Roles are listed from least to most
// privileged; the first is the default when a grant names none. A kind
// with no roles takes none.
type KindSpec struct {
	Name  string   `json:"name"`
	Roles []string `json:"roles,omitempty"`
	// Doc says in a few words what the kind is, for `roster policy check`.
	Doc string `json:"doc,omitempty"`
}

// DefaultRole returns the role a grant gets when it names none.
func (k KindSpec) DefaultRole() string {
	if len(k.Roles) == 0 {
		return ""
	}
	return k.Roles[0]
}

// RoleRank returns the position of role in Roles (higher is more
// privileged), or -1 if it is not one of them.
func (k KindSpec) RoleRank(role string) int {
	for i, r := range k.Roles {
		if r == role {
			return i
		}
	}
	return -1
}

// Person is what an app needs to know about a worker to create, find or
// restore an account for them. Every field but Worker may be empty.
type Person struct {
	Worker      WorkerID `json:"worker"`
	Email       string   `json:"email,omitempty"`
	UserName    string   `json:"userName,omitempty"`
	GivenName   string   `json:"givenName,omitempty"`
	FamilyName  string   `json:"familyName,omitempty"`
	DisplayName string   `json:"displayName,omitempty"`
	// Manager is the manager's e-mail: the receiver of data transferred on
	// leave.
	Manager string `json:"manager,omitempty"`
	// Attributes holds app-specific identifiers from HR, such as
	// "githubUsername" or "slackId".
	Attributes map[string]string `json:"attributes,omitempty"`
}

// AccountState is one account as the app reports it.
type AccountState struct {
	ID AccountID `json:"id"`
	// Worker is the Roster worker id the app stores with the account
	// (externalId and the like), when it can store one.
	Worker    WorkerID `json:"worker,omitempty"`
	Email     string   `json:"email,omitempty"`
	UserName  string   `json:"userName,omitempty"`
	Suspended bool     `json:"suspended,omitempty"`
	// Pending is true while the account is in progress and not yet usable:
	// a GitHub invitation not accepted yet.
	Pending bool `json:"pending,omitempty"`
	// Role is the account-level role ("admin"), if the app has one.
	Role string `json:"role,omitempty"`
	// Entitlements held by this account, except the account itself, in
	// Entitlement.Less order. Only entitlements the connector manages are
	// reported.
	Entitlements []Entitlement `json:"entitlements,omitempty"`
}

// State is a snapshot of one app: its accounts, in a stable order (by ID).
type State struct {
	App      string         `json:"app"`
	Accounts []AccountState `json:"accounts"`
}

// ActionKind says what an Action does.
type ActionKind string

// The action kinds, in the order a plan carries them out for one worker in
// one app.
const (
	SuspendAccount ActionKind = "suspend_account"
	RestoreAccount ActionKind = "restore_account"
	CreateAccount  ActionKind = "create_account"
	Grant          ActionKind = "grant"
	Revoke         ActionKind = "revoke"
	TransferData   ActionKind = "transfer_data"
	DeleteAccount  ActionKind = "delete_account"
)

// Phase orders action kinds: lower runs first.
func (k ActionKind) Phase() int {
	switch k {
	case SuspendAccount:
		return 0
	case RestoreAccount:
		return 1
	case CreateAccount:
		return 2
	case Grant:
		return 3
	case Revoke:
		return 4
	case TransferData:
		return 5
	case DeleteAccount:
		return 6
	}
	return 99
}

// Valid reports whether k is one of the known kinds.
func (k ActionKind) Valid() bool { return k.Phase() != 99 }

// Action is one change to carry out in one app. Connectors must apply it
// idempotently: applying an action twice leaves the app as applying it
// once, and "already done" is success.
type Action struct {
	Kind ActionKind `json:"kind"`
	// App is the connector instance name.
	App string `json:"app"`
	// Person identifies the worker and carries what the app needs to find
	// or create their account.
	Person Person `json:"person"`
	// Account is the app's id of the account when known from the last
	// snapshot; empty for CreateAccount and when unknown.
	Account AccountID `json:"account,omitempty"`
	// Entitlement is what Grant and Revoke change (for Grant, with the
	// role to hold); for CreateAccount it may carry an account role.
	Entitlement Entitlement `json:"entitlement"`
	// Reason says why, in the plan's words (joiner, mover, leaver, …).
	Reason string `json:"reason"`
	// Detail explains the reason: the role or exception behind a grant.
	Detail string `json:"detail,omitempty"`
}

// String is a short human form, e.g. "github: grant team/backend#member to w-123".
func (a Action) String() string {
	switch a.Kind {
	case Grant, Revoke:
		return fmt.Sprintf("%s: %s %s for %s", a.App, a.Kind, a.Entitlement, a.Person.Worker)
	default:
		return fmt.Sprintf("%s: %s for %s", a.App, a.Kind, a.Person.Worker)
	}
}
