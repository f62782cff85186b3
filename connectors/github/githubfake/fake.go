// Package githubfake is a stateful, strict fake of the part of GitHub's REST
// API (version 2022-11-28) that Roster's GitHub connector uses: one
// organisation's members, pending and failed invitations, teams and team
// memberships, users, installation tokens for a GitHub App, and the rate
// limit.
//
// It behaves like GitHub where the connector could tell the difference:
//
//   - auth: "Authorization: Bearer <token>" or "token <token>" with the
//     personal access token (Options.Token) or an installation token it
//     issued; a wrong or missing token is 401. A PAT's scopes
//     (Options.Scopes) come back in X-OAuth-Scopes and are enforced: reads
//     need read:org, write:org or admin:org; writes and the invitation
//     lists need admin:org. An app installation's "members" permission
//     (Options.App.Members: "read" or "write") is enforced the same way.
//   - POST /app/installations/{id}/access_tokens takes an RS256 JWT signed
//     with the app's private key (verified with Options.App.PublicKey) and
//     issues a token that expires after Options.App.TokenTTL.
//   - inviting an existing member or an already invited user or e-mail is
//     422; a team membership PUT for a user who is not a member is 422
//     unless the user is invited, and then the team membership is
//     "pending" until the invitation is accepted; a DELETE of a membership
//     that does not exist is 404; removing a member removes them from
//     every team; role "reinstate" works only for a former member.
//   - lists paginate with per_page (default 30, at most 100) and page and
//     answer Link headers; every 200 to a GET carries an ETag, and a GET
//     with a matching If-None-Match gets 304 with no body, which does not
//     count against the rate limit.
//   - every response carries X-RateLimit-Limit, -Remaining, -Used, -Reset
//     and -Resource; when the budget is spent the answer is 403 with
//     X-RateLimit-Remaining: 0, as GitHub's primary limit.
//
// Requests are checked like the real API checks them (method, path, query
// values, JSON bodies with unknown fields or wrong enums are 422), and the
// fake can inject faults (SetFaults): a fraction of requests answered 429
// with Retry-After, 502 before or after the change is made, or left hanging
// until the client gives up; deterministic for a given seed and order of
// requests. Calls counts requests by route; Writes lists every effective
// change, for duplicate checks; Requests logs every request with its time.
//
// The helpers (AddTeam, AddUser, AddMember, AcceptInvitation…) change the
// state directly, without HTTP, faults or counting. Everything is safe for
// concurrent use.
package githubfake

import (
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configures a Server. The zero value is a usable fake of org
// "acme" that accepts a generated PAT with scope admin:org.
type Options struct {
	// Org is the organisation's login ("acme" when empty).
	Org string
	// Token is the personal access token the fake accepts; generated when
	// empty (see Server.Token).
	Token string
	// Scopes are the PAT's OAuth scopes, sent in X-OAuth-Scopes; nil means
	// ["admin:org"]. An empty non-nil slice is a PAT without scopes.
	Scopes []string
	// App, when set, lets a GitHub App installation authenticate.
	App *App
	// Teams and Users seed the org's teams (by slug) and the users that
	// exist on GitHub (by login).
	Teams []string
	Users []string
	// AnyUser makes every well-formed login exist: GET /users/{login}
	// creates the user on first sight.
	AnyUser bool
	// AutoAccept makes every invitation accepted the moment it is made, as
	// by a person who clicks the link at once.
	AutoAccept bool
	// RateLimit is the primary budget per window (0: 5,000); RateWindow is
	// the window (0: one hour).
	RateLimit  int
	RateWindow time.Duration
	// InvitationCap, when positive, is how many invitations the org may
	// send: the next one is refused with GitHub's 422 "Over invitation
	// rate limit" (GitHub caps invitations per day).
	InvitationCap int
	// Faults are injected from the start; see SetFaults.
	Faults Faults
	// Now is the fake's clock (time.Now when nil): token expiry, the
	// rate-limit window, timestamps.
	Now func() time.Time
}

// App describes the one GitHub App installation the fake knows.
type App struct {
	ID             int64
	InstallationID int64
	// PublicKey verifies the JWTs the app signs.
	PublicKey *rsa.PublicKey
	// TokenTTL is the installation tokens' lifetime (0: one hour).
	TokenTTL time.Duration
	// Members is the installation's "members" organisation permission:
	// "write", "read" or "" (none).
	Members string
}

// Faults are the injected failures. Each request draws once: with
// probability Rate429 it is answered 429 with Retry-After; with Rate5xx it
// is answered 502 without being processed; with RateLost it is processed
// and then answered 502 (the response is lost); with RateHang it hangs
// until the client gives up or the server closes. The rates add up and
// must not exceed 1.
type Faults struct {
	Rate429, Rate5xx, RateLost, RateHang float64
	// Burst429 answers the next Burst429 requests 429, before any draw.
	Burst429 int
	// RetryAfter is the Retry-After sent with an injected 429, rounded up
	// to whole seconds (0: 1s; negative: "0", for fast tests).
	RetryAfter time.Duration
	// Seed seeds the draws (0 is a valid seed).
	Seed int64
}

// Calls counts requests.
type Calls struct {
	// Total is every request, faults and 304s included.
	Total int
	// RateLimited is the requests that count against the primary rate
	// limit: every request but a 304 to a conditional GET.
	RateLimited int
	// NotModified is the 304s.
	NotModified int
	// Throttled is the injected 429s.
	Throttled int
	// ByRoute counts requests by "METHOD /pattern", as
	// "GET /orgs/{org}/members".
	ByRoute map[string]int
}

// Write is one effective change made over HTTP.
type Write struct {
	Seq    int
	Time   time.Time
	Method string
	// Route is "METHOD /pattern"; Path the request's path.
	Route, Path string
	// Target names what changed: a login, an e-mail, an invitation id.
	Target string
	// What says what happened: "invite", "cancel invitation", "remove",
	// "role", "invitation role", "team", "team removed".
	What string
	// Detail completes What: the invitation's role ("direct_member",
	// "admin"), the new org role, the invitation id, or for teams the slug
	// and role ("backend maintainer", "backend member (pending)"; the slug
	// alone for "team removed").
	Detail string
}

// Request is one request as the fake saw it.
type Request struct {
	Time          time.Time
	Method, Route string
	// Path is the URL path; Query the raw query string.
	Path, Query string
	Status      int
	// Fault names an injected fault: "429", "502", "lost", "hang", or "".
	Fault string
}

// Invitation is a pending (or failed) invitation.
type Invitation struct {
	ID int64
	// Login is set for an invitation by user id; Email for one by e-mail.
	Login, Email string
	// Role is GitHub's: "direct_member", "admin" or "billing_manager".
	Role    string
	TeamIDs []int64
	Created time.Time
	// FailedReason is set on failed invitations.
	FailedReason string
}

// Server is the fake. URL is its base URL (no trailing slash); the API
// root to configure in a client is URL + "/".
type Server struct {
	URL string

	srv     *httptest.Server
	mux     *http.ServeMux
	access  map[string]access // route pattern → what it needs
	closing chan struct{}
	closeMu sync.Once

	mu         sync.Mutex
	opts       Options
	invited    int             // invitations made, for InvitationCap
	skipInList map[string]bool // members the member list leaves out
	now        func() time.Time
	token      string
	org        string
	orgID      int64
	nextID     int64
	users      map[string]*user // lower-cased login
	members    map[string]string
	former     map[string]string // lower-cased login → role before removal
	invites    map[int64]*Invitation
	failed     []*Invitation
	teams      map[string]*team
	appTokens  map[string]time.Time
	faults     Faults
	rng        *rand.Rand
	calls      Calls
	writes     []Write
	requests   []Request
	rateUsed   int
	rateWindow time.Time
}

type user struct {
	id     int64
	login  string
	email  string
	twoFA  bool
	joined time.Time
}

type team struct {
	id      int64
	slug    string
	parent  string            // the parent team's slug, "" for a top-level team
	members map[string]string // lower-cased login → member|maintainer
	pending map[string]string // invited users' pending team memberships
}

var loginRE = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9]|-[A-Za-z0-9]){0,38}$`)

// New starts a fake. Close it when done.
func New(opts Options) *Server {
	s := &Server{
		opts:      opts,
		now:       opts.Now,
		token:     opts.Token,
		org:       opts.Org,
		orgID:     1000,
		nextID:    5000,
		users:     map[string]*user{},
		members:   map[string]string{},
		former:    map[string]string{},
		invites:   map[int64]*Invitation{},
		teams:     map[string]*team{},
		appTokens: map[string]time.Time{},
		closing:   make(chan struct{}),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.org == "" {
		s.org = "acme"
	}
	if s.token == "" {
		sum := sha256.Sum256([]byte(fmt.Sprintf("githubfake %d", rand.Int64())))
		s.token = "ghp_" + hex.EncodeToString(sum[:])[:36]
	}
	if s.opts.Scopes == nil {
		s.opts.Scopes = []string{"admin:org"}
	}
	if s.opts.RateLimit <= 0 {
		s.opts.RateLimit = 5000
	}
	if s.opts.RateWindow <= 0 {
		s.opts.RateWindow = time.Hour
	}
	s.setFaultsLocked(opts.Faults)
	for _, slug := range opts.Teams {
		s.addTeamLocked(slug)
	}
	for _, l := range opts.Users {
		s.addUserLocked(l, "")
	}
	s.mux = http.NewServeMux()
	s.routes()
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// Close stops the server; hanging requests return at once.
func (s *Server) Close() {
	s.closeMu.Do(func() { close(s.closing) })
	s.srv.Close()
}

// Token returns the personal access token the fake accepts.
func (s *Server) Token() string { return s.token }

// Org returns the organisation's login.
func (s *Server) Org() string { return s.org }

// SetFaults replaces the injected faults and reseeds their draws.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setFaultsLocked(f)
}

func (s *Server) setFaultsLocked(f Faults) {
	s.faults = f
	s.rng = rand.New(rand.NewPCG(uint64(f.Seed), 0x5eed))
}

// AddTeam creates a team (name = slug) if it does not exist and returns
// its id.
func (s *Server) AddTeam(slug string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addTeamLocked(slug).id
}

// AddChildTeam creates team slug as a child of team parent (both created
// if missing). GitHub lists a child team's members as members of the
// parent too.
func (s *Server) AddChildTeam(slug, parent string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.addTeamLocked(parent)
	t := s.addTeamLocked(slug)
	t.parent = p.slug
	return t.id
}

func (s *Server) addTeamLocked(slug string) *team {
	slug = strings.ToLower(slug)
	if t := s.teams[slug]; t != nil {
		return t
	}
	s.nextID++
	t := &team{id: s.nextID, slug: slug, members: map[string]string{}, pending: map[string]string{}}
	s.teams[slug] = t
	return t
}

// AddUser makes a GitHub user exist (it need not be in the org) and
// returns its id. It panics on a login GitHub would not allow, as a
// test's typo should fail loudly.
func (s *Server) AddUser(login string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addUserLocked(login, "").id
}

// AddUserWithEmail is AddUser for a user whose verified e-mail is email:
// an invitation to that e-mail is theirs to accept.
func (s *Server) AddUserWithEmail(login, email string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addUserLocked(login, email).id
}

func (s *Server) addUserLocked(login, email string) *user {
	if !loginRE.MatchString(login) {
		panic(fmt.Sprintf("githubfake: %q is not a valid GitHub login", login))
	}
	k := strings.ToLower(login)
	if u := s.users[k]; u != nil {
		if email != "" {
			u.email = email
		}
		return u
	}
	s.nextID++
	u := &user{id: s.nextID, login: login, email: email, twoFA: true, joined: s.now().UTC()}
	s.users[k] = u
	return u
}

// AddMember makes login (created if need be) a member with role "member"
// or "admin", as if they had joined long ago.
func (s *Server) AddMember(login, role string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.addUserLocked(login, "")
	s.members[strings.ToLower(u.login)] = orgRole(role)
}

// AddTeamMember puts a member into a team (created if need be) with role
// "member" or "maintainer".
func (s *Server) AddTeamMember(slug, login, role string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if role == "" {
		role = "member"
	}
	s.addTeamLocked(slug).members[strings.ToLower(login)] = role
}

// RemoveMember removes login from the org and its teams, as an admin
// would in GitHub's web UI. It reports whether login was a member.
func (s *Server) RemoveMember(login string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.removeMemberLocked(strings.ToLower(login))
}

// SkipInList makes the org's member list leave login out while it stays a
// member, as when the list changes between two pages of a read.
func (s *Server) SkipInList(login string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.skipInList == nil {
		s.skipInList = map[string]bool{}
	}
	s.skipInList[strings.ToLower(login)] = true
}

// RenameUser changes a user's login, as a person can on GitHub: the user
// id, org membership, team memberships and invitations stay theirs.
func (s *Server) RenameUser(old, renamed string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ok, nk := strings.ToLower(old), strings.ToLower(renamed)
	u := s.users[ok]
	switch {
	case u == nil:
		return fmt.Errorf("githubfake: no user %q", old)
	case !loginRE.MatchString(renamed):
		return fmt.Errorf("githubfake: %q is not a login", renamed)
	case s.users[nk] != nil:
		return fmt.Errorf("githubfake: login %q is taken", renamed)
	}
	delete(s.users, ok)
	u.login = renamed
	s.users[nk] = u
	move := func(m map[string]string) {
		if v, had := m[ok]; had {
			delete(m, ok)
			m[nk] = v
		}
	}
	move(s.members)
	move(s.former)
	for _, t := range s.teams {
		move(t.members)
		move(t.pending)
	}
	for _, inv := range s.invites {
		if strings.EqualFold(inv.Login, old) {
			inv.Login = renamed
		}
	}
	return nil
}

// SetTwoFactor sets whether login has two-factor authentication enabled
// (new users have).
func (s *Server) SetTwoFactor(login string, enabled bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addUserLocked(login, "").twoFA = enabled
}

// AcceptInvitation accepts, as the invited person, the pending invitation
// for loginOrEmail: an invitation to that login, or to that e-mail. An
// e-mail invitation is accepted by the user whose e-mail it is
// (AddUserWithEmail), or else by a new user whose login is made from the
// e-mail's local part. It returns the login that joined.
func (s *Server) AcceptInvitation(loginOrEmail string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, inv := range s.sortedInvites() {
		if strings.EqualFold(inv.Login, loginOrEmail) || (inv.Email != "" && strings.EqualFold(inv.Email, loginOrEmail)) {
			return s.acceptLocked(inv), nil
		}
	}
	return "", fmt.Errorf("githubfake: no pending invitation for %q", loginOrEmail)
}

// ExpireInvitation moves a pending invitation to the failed list, as
// GitHub does after seven days.
func (s *Server) ExpireInvitation(id int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	inv := s.invites[id]
	if inv == nil {
		return fmt.Errorf("githubfake: no pending invitation %d", id)
	}
	delete(s.invites, id)
	s.dropPendingTeamsLocked(inv)
	inv.FailedReason = "Invitation expired"
	s.failed = append(s.failed, inv)
	return nil
}

func (s *Server) acceptLocked(inv *Invitation) string {
	login := inv.Login
	if login == "" {
		for _, u := range s.users {
			if u.email != "" && strings.EqualFold(u.email, inv.Email) {
				login = u.login
				break
			}
		}
	}
	if login == "" {
		base := strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
				return r
			}
			return '-'
		}, strings.SplitN(inv.Email, "@", 2)[0])
		base = strings.Trim(regexp.MustCompile(`-+`).ReplaceAllString(base, "-"), "-")
		if base == "" {
			base = "user"
		}
		login = base
		for i := 2; s.users[strings.ToLower(login)] != nil; i++ {
			login = fmt.Sprintf("%s-%d", base, i)
		}
		s.addUserLocked(login, inv.Email)
	}
	k := strings.ToLower(login)
	delete(s.invites, inv.ID)
	s.members[k] = orgRole(inv.Role)
	delete(s.former, k)
	for _, t := range s.teams {
		if r, ok := t.pending[k]; ok {
			delete(t.pending, k)
			t.members[k] = r
		}
		if slices.Contains(inv.TeamIDs, t.id) {
			if _, ok := t.members[k]; !ok {
				t.members[k] = "member"
			}
		}
	}
	return s.users[k].login
}

// Members returns the org's members: login → "admin" or "member".
func (s *Server) Members() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]string, len(s.members))
	for k, r := range s.members {
		out[s.users[k].login] = r
	}
	return out
}

// TeamMembers returns a team's active members: login → "member" or
// "maintainer"; nil for an unknown team.
func (s *Server) TeamMembers(slug string) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.teamMap(slug, false)
}

// PendingTeamMembers returns a team's pending memberships (invited users).
func (s *Server) PendingTeamMembers(slug string) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.teamMap(slug, true)
}

func (s *Server) teamMap(slug string, pending bool) map[string]string {
	t := s.teams[strings.ToLower(slug)]
	if t == nil {
		return nil
	}
	m := t.members
	if pending {
		m = t.pending
	}
	out := make(map[string]string, len(m))
	for k, r := range m {
		out[s.users[k].login] = r
	}
	return out
}

// Invitations returns the pending invitations, oldest first.
func (s *Server) Invitations() []Invitation {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Invitation
	for _, inv := range s.sortedInvites() {
		c := *inv
		c.TeamIDs = slices.Clone(inv.TeamIDs)
		out = append(out, c)
	}
	return out
}

// Calls returns the request counts so far.
func (s *Server) Calls() Calls {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.calls
	c.ByRoute = make(map[string]int, len(s.calls.ByRoute))
	for k, v := range s.calls.ByRoute {
		c.ByRoute[k] = v
	}
	return c
}

// ResetCalls zeroes the counts and empties the request log (not the
// write log).
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = Calls{}
	s.requests = nil
}

// Writes returns the effective changes made over HTTP, in order.
func (s *Server) Writes() []Write {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.writes)
}

// Requests returns every request since the start or the last ResetCalls.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

func (s *Server) sortedInvites() []*Invitation {
	out := make([]*Invitation, 0, len(s.invites))
	for _, inv := range s.invites {
		out = append(out, inv)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// removeMemberLocked removes a member from the org and every team.
func (s *Server) removeMemberLocked(k string) bool {
	role, ok := s.members[k]
	if !ok {
		return false
	}
	delete(s.members, k)
	s.former[k] = role
	for _, t := range s.teams {
		delete(t.members, k)
		delete(t.pending, k)
	}
	return true
}

// dropPendingTeamsLocked forgets the pending team memberships of a
// cancelled or expired invitation.
func (s *Server) dropPendingTeamsLocked(inv *Invitation) {
	if inv.Login == "" {
		return
	}
	k := strings.ToLower(inv.Login)
	for _, t := range s.teams {
		delete(t.pending, k)
	}
}

func (s *Server) inviteFor(k string) *Invitation {
	for _, inv := range s.invites {
		if strings.ToLower(inv.Login) == k {
			return inv
		}
	}
	return nil
}

func (s *Server) logWrite(r *http.Request, route, target, what, detail string) {
	s.writes = append(s.writes, Write{Seq: len(s.writes) + 1, Time: s.now().UTC(), Method: r.Method, Route: route,
		Path: r.URL.Path, Target: target, What: what, Detail: detail})
}

// orgRole maps an invitation or membership role to the membership role.
func orgRole(r string) string {
	if r == "admin" {
		return "admin"
	}
	return "member"
}

func (s *Server) rateReset() int64 {
	return s.rateWindow.Add(s.opts.RateWindow).Unix()
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
