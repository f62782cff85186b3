// Package slackfake is a stateful, strict fake of the two Slack APIs the
// Roster Slack connector uses, for tests and demos: the Web API (RPC-style
// methods under /api/, as https://slack.com/api/) and the SCIM 2.0 API
// (under /scim/v2/, as https://api.slack.com/scim/v2/).
//
// It behaves like Slack where the connector can tell:
//
//   - Web API methods take GET query strings, form-encoded POST bodies
//     (what slack-go sends) and, for write methods, JSON bodies. The token
//     comes from "Authorization: Bearer" or, as slack-go sends it, from the
//     "token" form field; a JSON body needs the header. A missing token is
//     {"ok":false,"error":"not_authed"}, a wrong one "invalid_auth", a
//     method the token has no scope for "missing_scope" (with needed and
//     provided). Errors come as HTTP 200 with ok=false, as Slack sends them.
//     Every answer carries X-OAuth-Scopes.
//   - Lists paginate with cursor / response_metadata.next_cursor and a small
//     page limit (Options.PageLimit), so clients must follow cursors.
//   - usergroups.users.update replaces the whole member list and rejects an
//     empty one ("invalid_users"); conversations.invite answers
//     "already_in_channel" and conversations.kick "not_in_channel" for a
//     change already made.
//   - SCIM: Bearer token only, RFC 7644 errors (schemas, detail, status),
//     startIndex/count pagination, filters `email eq "…"` and
//     `userName eq "…"`. DELETE /Users/{id} deactivates: the user stays
//     readable with active=false. Deactivating a user (DELETE or PATCH
//     active=false) removes it from every user group and channel, as Slack
//     does; reactivating restores nothing.
//
// Faults (SetFaults) make a fraction of requests answer 429 with
// Retry-After, 5xx (both before anything is changed) or hang: a hung
// request is carried out, then its answer is withheld until the client
// gives up, as when a response is lost. The fake counts every call (Calls),
// keeps a log of requests with their status and time (Requests) and a log
// of every effective change (Writes) so tests can check that retries
// duplicated nothing.
//
// Seeding and inspection helpers (AddUsergroup, AddChannel, AddUser,
// UsergroupMembers, ChannelMembers, Users…) work on the state directly and
// are not counted as calls. A helper given an unknown name panics: that is
// a mistake in the calling test.
package slackfake

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// DefaultToken is the Web API (and SCIM) token a fake accepts when
// Options.Token is empty.
const DefaultToken = "xoxp-slackfake-0000-token"

// DefaultScopes returns the OAuth scopes a fake's token holds when
// Options.Scopes is nil: everything the Roster connector needs.
func DefaultScopes() []string {
	return []string{
		"admin", "channels:manage", "channels:read", "channels:write", "groups:read", "groups:write",
		"usergroups:read", "usergroups:write", "users:read", "users:read.email",
	}
}

// Options configure a fake workspace. The zero value is usable.
type Options struct {
	// Token is the Web API token (DefaultToken when empty).
	Token string
	// SCIMToken is the SCIM token; empty means Token. SCIM calls with
	// Token also need the "admin" scope.
	SCIMToken string
	// Scopes are the OAuth scopes Token holds (DefaultScopes when nil).
	Scopes []string
	// PageLimit is the most items one page holds, whatever the client
	// asks for (50 when zero). Slack's own caps are about 1,000.
	PageLimit int
	// TeamName is the workspace name ("Pied Piper" when empty).
	TeamName string
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// DisabledGroupsReadOnly makes usergroups.users.update answer
	// "no_such_subteam" for a disabled group. Slack does not document
	// whether it changes a disabled group's list; by default the fake
	// does.
	DisabledGroupsReadOnly bool
}

// Faults make the fake misbehave, deterministically for one Seed (as far
// as the order of concurrent requests allows). Rates are probabilities per
// request and add up: a request draws one number and is answered 429 when
// it falls below Rate429, 5xx when below Rate429+Rate5xx, and hangs when
// below Rate429+Rate5xx+RateHang.
type Faults struct {
	Rate429  float64
	Rate5xx  float64
	RateHang float64
	// RetryAfter is the wait a 429 asks for, sent as whole seconds
	// (rounded up; 0 sends "Retry-After: 0").
	RetryAfter time.Duration
	// First429 makes the next First429 requests answer 429, whatever the
	// rates.
	First429 int
	// Seed seeds the draws.
	Seed int64
}

// User is one Slack user as the fake holds it.
type User struct {
	ID          string
	UserName    string
	Email       string
	GivenName   string
	FamilyName  string
	DisplayName string
	// ExternalID is the SCIM externalId (Roster stores the worker id).
	ExternalID string
	Active     bool
	Has2FA     bool
	// Admin marks the workspace admin who owns the token.
	Admin   bool
	Created time.Time
}

// Calls counts the requests the fake received.
type Calls struct {
	// Total counts every request.
	Total int
	// Limited counts the requests that count against a Slack rate limit:
	// every Web API method of tiers 1–4 and every SCIM call (auth.test,
	// a "special" tier method, is not counted).
	Limited int
	// Throttled counts the requests answered 429 (faults).
	Throttled int
	// Failed counts the requests answered 5xx (faults).
	Failed int
	// ByMethod counts requests per Web API method ("usergroups.list") or
	// SCIM route ("SCIM GET /Users", "SCIM PATCH /Users/{id}").
	ByMethod map[string]int
	// ByTier counts requests per Slack rate-limit tier: "tier2", "tier3",
	// "tier4", "special", "scim".
	ByTier map[string]int
	// NextPages counts, per method, the requests for a page after the
	// first (a cursor, or a SCIM startIndex above 1).
	NextPages map[string]int
}

// Request is one request in the fake's log.
type Request struct {
	At time.Time
	// Method is the Web API method or SCIM route, as in Calls.ByMethod.
	Method string
	// Status is the HTTP status sent (0 for a hung request).
	Status int
	// Fault names the injected fault, if any: "429", "5xx", "hang".
	Fault string
}

// Write is one effective change in the fake's write log.
type Write struct {
	Seq int
	At  time.Time
	// Op is what changed: "scim.create", "scim.update", "scim.deactivate",
	// "scim.reactivate", "usergroups.users.update", "usergroups.enable",
	// "usergroups.disable", "conversations.invite", "conversations.kick".
	Op string
	// Target is the user group or channel id; the user id for SCIM ops.
	Target string
	// User is the user added or removed (invite, kick); for
	// usergroups.users.update the new member list, comma-separated.
	User string
	// Detail says more (the changed SCIM attributes, the e-mail created).
	Detail string
}

type usergroup struct {
	id, handle, name, description string
	users                         []string
	disabled                      bool
	created, updated              time.Time
	createdBy, updatedBy          string
}

type channel struct {
	id, name          string
	private, archived bool
	members           map[string]bool
	created           time.Time
	creator           string
}

// Server is a running fake. Close it when done.
type Server struct {
	// URL is the server's base URL ("http://127.0.0.1:PORT").
	URL string
	// Token is the Web API token it accepts.
	Token string
	// SCIMToken is the SCIM token it accepts.
	SCIMToken string

	srv       *httptest.Server
	pageLimit int
	teamName  string
	roGroups  bool
	now       func() time.Time
	quit      chan struct{}
	closeOnce sync.Once

	mu       sync.Mutex
	scopes   map[string]bool
	seq      int
	teamID   string
	admin    string
	users    map[string]*User
	groups   map[string]*usergroup
	channels map[string]*channel
	faults   Faults
	first429 int
	rng      *rand.Rand
	calls    Calls
	requests []Request
	writes   []Write
}

// New starts a fake workspace with one user, the admin who owns the token
// (admin@example.com, 2FA on), and nothing else.
func New(opts Options) *Server {
	s := &Server{
		Token:     opts.Token,
		SCIMToken: opts.SCIMToken,
		pageLimit: opts.PageLimit,
		roGroups:  opts.DisabledGroupsReadOnly,
		teamName:  opts.TeamName,
		now:       opts.Now,
		quit:      make(chan struct{}),
		teamID:    "T00000001",
		users:     map[string]*User{},
		groups:    map[string]*usergroup{},
		channels:  map[string]*channel{},
		rng:       rand.New(rand.NewPCG(1, 2)),
	}
	if s.Token == "" {
		s.Token = DefaultToken
	}
	if s.SCIMToken == "" {
		s.SCIMToken = s.Token
	}
	if s.pageLimit <= 0 {
		s.pageLimit = 50
	}
	if s.teamName == "" {
		s.teamName = "Pied Piper"
	}
	if s.now == nil {
		s.now = time.Now
	}
	scopes := opts.Scopes
	if scopes == nil {
		scopes = DefaultScopes()
	}
	s.setScopesLocked(scopes)
	s.resetCallsLocked()
	s.admin = s.addUserLocked(User{UserName: "admin", Email: "admin@example.com", GivenName: "Slack", FamilyName: "Admin",
		DisplayName: "admin", Active: true, Has2FA: true, Admin: true})
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// Close stops the server; hung requests end.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.quit) })
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// APIURL is the Web API base URL, ending in "/api/" (slack-go's
// OptionAPIURL, the connector's api_url).
func (s *Server) APIURL() string { return s.URL + "/api/" }

// SCIMURL is the SCIM base URL, ending in "/scim/v2/" (the connector's
// scim_url).
func (s *Server) SCIMURL() string { return s.URL + "/scim/v2/" }

// AdminID is the id of the admin user who owns the token.
func (s *Server) AdminID() string { return s.admin }

// SetScopes replaces the scopes the Web API token holds.
func (s *Server) SetScopes(scopes ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setScopesLocked(scopes)
}

func (s *Server) setScopesLocked(scopes []string) {
	s.scopes = map[string]bool{}
	for _, sc := range scopes {
		s.scopes[sc] = true
	}
}

// SetFaults replaces the fault settings and reseeds the draws.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
	s.first429 = f.First429
	s.rng = rand.New(rand.NewPCG(uint64(f.Seed), 0x5eed))
}

func (s *Server) nextID(prefix string) string {
	s.seq++
	return fmt.Sprintf("%s%08d", prefix, s.seq)
}

// AddUser adds a user directly (not counted as a call) and returns its id.
// Created defaults to now; an empty UserName is taken from the e-mail.
func (s *Server) AddUser(u User) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addUserLocked(u)
}

func (s *Server) addUserLocked(u User) string {
	u.ID = s.nextID("U")
	if u.Created.IsZero() {
		u.Created = s.now().UTC()
	}
	if u.UserName == "" {
		u.UserName, _, _ = strings.Cut(u.Email, "@")
	}
	s.users[u.ID] = &u
	return u.ID
}

// AddUsergroup adds an enabled user group with no members and returns its
// id. The name is the handle.
func (s *Server) AddUsergroup(handle string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UTC()
	g := &usergroup{id: s.nextID("S"), handle: handle, name: handle, created: now, updated: now, createdBy: s.admin, updatedBy: s.admin}
	s.groups[g.id] = g
	return g.id
}

// AddUsergroups adds enabled, empty user groups.
func (s *Server) AddUsergroups(handles ...string) {
	for _, h := range handles {
		s.AddUsergroup(h)
	}
}

// AddChannels adds public channels whose only member is the admin.
func (s *Server) AddChannels(names ...string) {
	for _, n := range names {
		s.AddChannel(n)
	}
}

// AddChannel adds a public channel whose only member is the admin (its
// creator) and returns its id.
func (s *Server) AddChannel(name string) string { return s.addChannel(name, false) }

// AddPrivateChannel adds a private channel whose only member is the admin.
func (s *Server) AddPrivateChannel(name string) string { return s.addChannel(name, true) }

func (s *Server) addChannel(name string, private bool) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &channel{id: s.nextID("C"), name: name, private: private, members: map[string]bool{s.admin: true},
		created: s.now().UTC(), creator: s.admin}
	s.channels[c.id] = c
	return c.id
}

// ArchiveChannel archives a channel.
func (s *Server) ArchiveChannel(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.channelByNameLocked(name).archived = true
}

// SetUsergroupMembers replaces a group's members directly.
func (s *Server) SetUsergroupMembers(handle string, ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groupByHandleLocked(handle)
	g.users = sortedUnique(ids)
}

// SetUsergroupDisabled disables or enables a group directly.
func (s *Server) SetUsergroupDisabled(handle string, disabled bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groupByHandleLocked(handle).disabled = disabled
}

// AddChannelMembers adds users to a channel directly.
func (s *Server) AddChannelMembers(name string, ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channelByNameLocked(name)
	for _, id := range ids {
		c.members[id] = true
	}
}

// Set2FA sets whether a user has two-factor authentication on.
func (s *Server) Set2FA(id string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if !ok {
		panic("slackfake: Set2FA: no user " + id)
	}
	u.Has2FA = on
}

// Users returns every user, ordered by id.
func (s *Server) Users() []User {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]User, 0, len(s.users))
	for _, u := range s.users {
		out = append(out, *u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// UserByEmail returns the user with that e-mail (case-insensitive).
func (s *Server) UserByEmail(email string) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.userByEmailLocked(email); u != nil {
		return *u, true
	}
	return User{}, false
}

// UsergroupMembers returns the member ids of the group with that handle,
// sorted (whether the group is enabled or not).
func (s *Server) UsergroupMembers(handle string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.groupByHandleLocked(handle).users)
}

// UsergroupDisabled reports whether the group with that handle is
// disabled.
func (s *Server) UsergroupDisabled(handle string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.groupByHandleLocked(handle).disabled
}

// ChannelMembers returns the member ids of the channel with that name,
// sorted (the admin included).
func (s *Server) ChannelMembers(name string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sortedKeys(s.channelByNameLocked(name).members)
}

// ChannelID returns the id of the channel with that name.
func (s *Server) ChannelID(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.channelByNameLocked(name).id
}

// UsergroupID returns the id of the user group with that handle.
func (s *Server) UsergroupID(handle string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.groupByHandleLocked(handle).id
}

// Calls returns the call counters.
func (s *Server) Calls() Calls {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.calls
	c.ByMethod = cloneMap(c.ByMethod)
	c.ByTier = cloneMap(c.ByTier)
	c.NextPages = cloneMap(c.NextPages)
	return c
}

// ResetCalls zeroes the call counters and empties the request log.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resetCallsLocked()
}

func (s *Server) resetCallsLocked() {
	s.calls = Calls{ByMethod: map[string]int{}, ByTier: map[string]int{}, NextPages: map[string]int{}}
	s.requests = nil
}

// Requests returns the request log, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Writes returns the write log, oldest first.
func (s *Server) Writes() []Write {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.writes)
}

func (s *Server) logWrite(op, target, user, detail string) {
	s.writes = append(s.writes, Write{Seq: len(s.writes) + 1, At: s.now().UTC(), Op: op, Target: target, User: user, Detail: detail})
}

func (s *Server) groupByHandleLocked(handle string) *usergroup {
	for _, g := range s.groups {
		if g.handle == handle {
			return g
		}
	}
	panic("slackfake: no user group with handle " + handle)
}

func (s *Server) channelByNameLocked(name string) *channel {
	for _, c := range s.channels {
		if c.name == name {
			return c
		}
	}
	panic("slackfake: no channel named " + name)
}

func (s *Server) userByEmailLocked(email string) *User {
	for _, u := range s.users {
		if strings.EqualFold(u.Email, email) {
			return u
		}
	}
	return nil
}

// deactivateLocked deactivates u and removes it from every user group and
// channel, as Slack does.
func (s *Server) deactivateLocked(u *User) {
	u.Active = false
	for _, g := range s.groups {
		if i := slices.Index(g.users, u.ID); i >= 0 {
			g.users = slices.Delete(g.users, i, i+1)
		}
	}
	for _, c := range s.channels {
		delete(c.members, u.ID)
	}
	s.logWrite("scim.deactivate", u.ID, "", u.Email)
}

func sortedUnique(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func cloneMap(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
