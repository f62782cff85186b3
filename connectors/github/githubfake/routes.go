package githubfake

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// apiURL is the host the fake's objects link to, as GitHub's do.
const apiURL = "https://api.github.com"

// routes registers every route with what it needs from the credentials.
func (s *Server) routes() {
	s.access = map[string]access{}
	h := func(pattern string, need access, fn http.HandlerFunc) {
		s.access[pattern] = need
		s.mux.HandleFunc(pattern, fn)
	}
	h("GET /users/{username}", accessNone, s.getUser)
	h("GET /rate_limit", accessNone, s.getRateLimit)
	h("GET /orgs/{org}", accessRead, s.orgOnly(s.getOrg))
	h("GET /orgs/{org}/members", accessRead, s.orgOnly(s.listMembers))
	h("GET /orgs/{org}/memberships/{username}", accessRead, s.orgOnly(s.getMembership))
	h("PUT /orgs/{org}/memberships/{username}", accessWrite, s.orgOnly(s.putMembership))
	h("DELETE /orgs/{org}/memberships/{username}", accessWrite, s.orgOnly(s.deleteMembership))
	h("GET /orgs/{org}/invitations", accessOwner, s.orgOnly(s.listInvitations))
	h("POST /orgs/{org}/invitations", accessWrite, s.orgOnly(s.createInvitation))
	h("DELETE /orgs/{org}/invitations/{invitation_id}", accessWrite, s.orgOnly(s.cancelInvitation))
	h("GET /orgs/{org}/failed_invitations", accessOwner, s.orgOnly(s.listFailed))
	h("GET /orgs/{org}/teams", accessRead, s.orgOnly(s.listTeams))
	h("GET /orgs/{org}/teams/{team_slug}", accessRead, s.orgOnly(s.getTeam))
	h("GET /orgs/{org}/teams/{team_slug}/members", accessRead, s.orgOnly(s.listTeamMembers))
	h("GET /orgs/{org}/teams/{team_slug}/memberships/{username}", accessRead, s.orgOnly(s.getTeamMembership))
	h("PUT /orgs/{org}/teams/{team_slug}/memberships/{username}", accessWrite, s.orgOnly(s.putTeamMembership))
	h("DELETE /orgs/{org}/teams/{team_slug}/memberships/{username}", accessWrite, s.orgOnly(s.deleteTeamMembership))
	h("POST /app/installations/{installation_id}/access_tokens", accessJWT, s.createAccessToken)
}

// orgOnly answers 404 for any org but the fake's.
func (s *Server) orgOnly(fn http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.PathValue("org"), s.org) {
			notFound(w)
			return
		}
		fn(w, r)
	}
}

// query checks the query string: only the named parameters, each valid.
// enums maps a parameter to its allowed values; "per_page" and "page" are
// integers.
func query(w http.ResponseWriter, r *http.Request, enums map[string][]string, paged bool) (url.Values, bool) {
	q := r.URL.Query()
	for k, vs := range q {
		if len(vs) != 1 {
			invalid(w, fmt.Sprintf("parameter %q given %d times", k, len(vs)))
			return nil, false
		}
		v := vs[0]
		switch {
		case paged && (k == "per_page" || k == "page"):
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				invalid(w, fmt.Sprintf("%s: %q is not a non-negative integer", k, v))
				return nil, false
			}
		case enums[k] != nil:
			if !slices.Contains(enums[k], v) {
				invalid(w, fmt.Sprintf("%s: %q is not one of %s", k, v, strings.Join(enums[k], ", ")))
				return nil, false
			}
		default:
			invalid(w, fmt.Sprintf("unknown query parameter %q", k))
			return nil, false
		}
	}
	return q, true
}

// page cuts one page out of n items and sets the Link header; it returns
// the half-open range to send.
func page(w http.ResponseWriter, r *http.Request, n int) (from, to int) {
	q := r.URL.Query()
	per := 30
	if v := q.Get("per_page"); v != "" {
		per, _ = strconv.Atoi(v)
		if per <= 0 {
			per = 30
		}
		per = min(per, 100)
	}
	p := 1
	if v := q.Get("page"); v != "" {
		p, _ = strconv.Atoi(v)
		p = max(p, 1)
	}
	last := max((n+per-1)/per, 1)
	link := func(pg int, rel string) string {
		q2 := r.URL.Query()
		q2.Set("page", strconv.Itoa(pg))
		q2.Set("per_page", strconv.Itoa(per))
		u := url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawQuery: q2.Encode()}
		return fmt.Sprintf("<%s>; rel=%q", u.String(), rel)
	}
	var links []string
	if p < last {
		links = append(links, link(p+1, "next"), link(last, "last"))
	}
	if p > 1 {
		links = append(links, link(1, "first"), link(min(p-1, last), "prev"))
	}
	if len(links) > 0 {
		w.Header().Set("Link", strings.Join(links, ", "))
	}
	from = min((p-1)*per, n)
	return from, min(from+per, n)
}

// body decodes a JSON body strictly into v; an empty body leaves v alone.
func body(w http.ResponseWriter, r *http.Request, v any) bool {
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Message: "Problems parsing JSON"})
		return false
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return true
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) || strings.HasPrefix(err.Error(), "json: unknown field") {
			invalid(w, "Invalid request.\n\n"+err.Error())
			return false
		}
		writeJSON(w, http.StatusBadRequest, apiError{Message: "Problems parsing JSON"})
		return false
	}
	return true
}

func (s *Server) userByLogin(login string) *user {
	u := s.users[strings.ToLower(login)]
	if u == nil && s.opts.AnyUser && loginRE.MatchString(login) {
		u = s.addUserLocked(login, "")
	}
	return u
}

func (s *Server) userByID(id int64) *user {
	for _, u := range s.users {
		if u.id == id {
			return u
		}
	}
	return nil
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request) {
	if _, ok := query(w, r, nil, false); !ok {
		return
	}
	u := s.userByLogin(r.PathValue("username"))
	if u == nil {
		notFound(w)
		return
	}
	writeJSON(w, http.StatusOK, s.publicUser(u))
}

func (s *Server) getRateLimit(w http.ResponseWriter, r *http.Request) {
	if _, ok := query(w, r, nil, false); !ok {
		return
	}
	rate := map[string]any{"limit": s.opts.RateLimit, "remaining": max(s.opts.RateLimit-s.rateUsed, 0),
		"reset": s.rateReset(), "used": s.rateUsed}
	writeJSON(w, http.StatusOK, map[string]any{"rate": rate, "resources": map[string]any{"core": rate}})
}

func (s *Server) getOrg(w http.ResponseWriter, r *http.Request) {
	if _, ok := query(w, r, nil, false); !ok {
		return
	}
	writeJSON(w, http.StatusOK, s.orgSimple())
}

func (s *Server) membersSorted(keep func(k string, u *user) bool) []*user {
	var out []*user
	for k := range s.members {
		if u := s.users[k]; keep(k, u) {
			out = append(out, u)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

func (s *Server) listMembers(w http.ResponseWriter, r *http.Request) {
	q, ok := query(w, r, map[string][]string{"filter": {"all", "2fa_disabled", "2fa_insecure"}, "role": {"all", "admin", "member"}}, true)
	if !ok {
		return
	}
	users := s.membersSorted(func(k string, u *user) bool {
		if s.skipInList[k] {
			return false
		}
		if f := q.Get("filter"); (f == "2fa_disabled" || f == "2fa_insecure") && u.twoFA {
			return false
		}
		switch q.Get("role") {
		case "admin":
			return s.members[k] == "admin"
		case "member":
			return s.members[k] == "member"
		}
		return true
	})
	from, to := page(w, r, len(users))
	out := make([]map[string]any, 0, to-from)
	for _, u := range users[from:to] {
		out = append(out, s.simpleUser(u))
	}
	writeJSON(w, http.StatusOK, out)
}

// membership returns login's org membership state: "active", "pending"
// (invited by login) or "".
func (s *Server) membership(k string) (state, role string, inv *Invitation) {
	if r, ok := s.members[k]; ok {
		return "active", r, nil
	}
	if inv := s.inviteFor(k); inv != nil {
		return "pending", orgRole(inv.Role), inv
	}
	return "", "", nil
}

func (s *Server) getMembership(w http.ResponseWriter, r *http.Request) {
	if _, ok := query(w, r, nil, false); !ok {
		return
	}
	u := s.userByLogin(r.PathValue("username"))
	if u == nil {
		notFound(w)
		return
	}
	state, role, _ := s.membership(strings.ToLower(u.login))
	if state == "" {
		notFound(w)
		return
	}
	writeJSON(w, http.StatusOK, s.orgMembership(u, state, role))
}

// roleBody reads a PUT's {"role": …} (default "member"), answering 422
// for a role not in allowed; ok is false when it has answered.
func roleBody(w http.ResponseWriter, r *http.Request, resource string, allowed ...string) (role string, ok bool) {
	if _, ok := query(w, r, nil, false); !ok {
		return "", false
	}
	var in struct {
		Role *string `json:"role"`
	}
	if !body(w, r, &in) {
		return "", false
	}
	role = "member"
	if in.Role != nil {
		role = *in.Role
	}
	if !slices.Contains(allowed, role) {
		invalid(w, "Validation Failed", fieldError{Resource: resource, Field: "role", Code: "invalid"})
		return "", false
	}
	return role, true
}

func (s *Server) putMembership(w http.ResponseWriter, r *http.Request) {
	role, ok := roleBody(w, r, "Membership", "admin", "member")
	if !ok {
		return
	}
	u := s.userByLogin(r.PathValue("username"))
	if u == nil {
		notFound(w)
		return
	}
	k := strings.ToLower(u.login)
	route := "PUT /orgs/{org}/memberships/{username}"
	state, cur, inv := s.membership(k)
	switch state {
	case "active":
		if cur != role {
			s.members[k] = role
			s.logWrite(r, route, u.login, "role", role)
		}
	case "pending":
		if cur != role {
			inv.Role = invitationRole(role)
			s.logWrite(r, route, u.login, "invitation role", role)
		}
	default:
		// GitHub invites a user who is not a member.
		inv := s.newInvitation(u.login, "", invitationRole(role), nil)
		s.logWrite(r, route, u.login, "invite", inv.Role)
		state = "pending"
		if s.opts.AutoAccept {
			s.acceptLocked(inv)
			state = "active"
		}
	}
	writeJSON(w, http.StatusOK, s.orgMembership(u, state, role))
}

func (s *Server) deleteMembership(w http.ResponseWriter, r *http.Request) {
	if _, ok := query(w, r, nil, false); !ok {
		return
	}
	u := s.userByLogin(r.PathValue("username"))
	if u == nil {
		notFound(w)
		return
	}
	k := strings.ToLower(u.login)
	route := "DELETE /orgs/{org}/memberships/{username}"
	switch state, _, inv := s.membership(k); state {
	case "active":
		s.removeMemberLocked(k)
		s.logWrite(r, route, u.login, "remove", "")
	case "pending":
		delete(s.invites, inv.ID)
		s.dropPendingTeamsLocked(inv)
		s.logWrite(r, route, u.login, "cancel invitation", itoa(inv.ID))
	default:
		notFound(w)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) listInvitations(w http.ResponseWriter, r *http.Request) {
	q, ok := query(w, r, map[string][]string{"role": {"all", "admin", "direct_member", "billing_manager", "hiring_manager"},
		"invitation_source": {"all", "member", "scim"}}, true)
	if !ok {
		return
	}
	var invs []*Invitation
	for _, inv := range s.sortedInvites() {
		if role := q.Get("role"); role != "" && role != "all" && role != inv.Role {
			continue
		}
		if src := q.Get("invitation_source"); src == "scim" {
			continue
		}
		invs = append(invs, inv)
	}
	from, to := page(w, r, len(invs))
	out := make([]map[string]any, 0, to-from)
	for _, inv := range invs[from:to] {
		out = append(out, s.invitationJSON(inv))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) listFailed(w http.ResponseWriter, r *http.Request) {
	if _, ok := query(w, r, nil, true); !ok {
		return
	}
	from, to := page(w, r, len(s.failed))
	out := make([]map[string]any, 0, to-from)
	for _, inv := range s.failed[from:to] {
		out = append(out, s.invitationJSON(inv))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) newInvitation(login, email, role string, teams []int64) *Invitation {
	s.nextID++
	inv := &Invitation{ID: s.nextID, Login: login, Email: email, Role: role, TeamIDs: teams, Created: s.now().UTC().Truncate(time.Second)}
	s.invites[inv.ID] = inv
	return inv
}

func invitationRole(orgRole string) string {
	if orgRole == "admin" {
		return "admin"
	}
	return "direct_member"
}

func (s *Server) createInvitation(w http.ResponseWriter, r *http.Request) {
	if _, ok := query(w, r, nil, false); !ok {
		return
	}
	var in struct {
		InviteeID *int64  `json:"invitee_id"`
		Email     *string `json:"email"`
		Role      *string `json:"role"`
		TeamIDs   []int64 `json:"team_ids"`
	}
	if !body(w, r, &in) {
		return
	}
	if (in.InviteeID == nil) == (in.Email == nil) {
		invalid(w, "Validation Failed", fieldError{Resource: "OrganizationInvitation", Code: "custom", Message: "Must specify either invitee_id or email"})
		return
	}
	role := "direct_member"
	if in.Role != nil {
		role = *in.Role
	}
	if !slices.Contains([]string{"admin", "direct_member", "billing_manager", "reinstate"}, role) {
		invalid(w, "Validation Failed", fieldError{Resource: "OrganizationInvitation", Field: "role", Code: "invalid"})
		return
	}
	for _, id := range in.TeamIDs {
		found := false
		for _, t := range s.teams {
			found = found || t.id == id
		}
		if !found {
			invalid(w, "Validation Failed", fieldError{Resource: "OrganizationInvitation", Field: "team_ids", Code: "invalid"})
			return
		}
	}
	var u *user
	email := ""
	if in.InviteeID != nil {
		if u = s.userByID(*in.InviteeID); u == nil {
			invalid(w, "Validation Failed", fieldError{Resource: "OrganizationInvitation", Field: "invitee_id", Code: "invalid", Message: "Invitee does not exist"})
			return
		}
	} else {
		email = strings.TrimSpace(*in.Email)
		at := strings.IndexByte(email, '@')
		if at <= 0 || at == len(email)-1 {
			invalid(w, "Validation Failed", fieldError{Resource: "OrganizationInvitation", Field: "email", Code: "invalid"})
			return
		}
		for _, x := range s.users {
			if x.email != "" && strings.EqualFold(x.email, email) {
				u = x
			}
		}
	}
	if u != nil {
		k := strings.ToLower(u.login)
		if _, member := s.members[k]; member {
			invalid(w, "Validation Failed", fieldError{Resource: "OrganizationInvitation", Code: "unprocessable", Message: "Invitee is already a part of this organization"})
			return
		}
		if s.inviteFor(k) != nil {
			invalid(w, "Validation Failed", fieldError{Resource: "OrganizationInvitation", Code: "unprocessable", Message: "Invitee is already invited"})
			return
		}
	}
	if email != "" {
		for _, inv := range s.invites {
			if strings.EqualFold(inv.Email, email) {
				invalid(w, "Validation Failed", fieldError{Resource: "OrganizationInvitation", Code: "unprocessable", Message: "Invitee is already invited"})
				return
			}
		}
	}
	if role == "reinstate" {
		prev, was := "", false
		if u != nil {
			prev, was = s.former[strings.ToLower(u.login)]
		}
		if !was {
			invalid(w, "Validation Failed", fieldError{Resource: "OrganizationInvitation", Field: "role", Code: "invalid", Message: "reinstate is only possible for a former member"})
			return
		}
		role = invitationRole(prev)
	}
	login := ""
	if in.InviteeID != nil {
		login = u.login
	}
	if s.opts.InvitationCap > 0 && s.invited >= s.opts.InvitationCap {
		invalid(w, "Validation Failed", fieldError{Resource: "OrganizationInvitation", Field: "data", Code: "unprocessable", Message: "Over invitation rate limit"})
		return
	}
	s.invited++
	inv := s.newInvitation(login, email, role, slices.Clone(in.TeamIDs))
	target := login
	if target == "" {
		target = email
	}
	s.logWrite(r, "POST /orgs/{org}/invitations", target, "invite", role)
	out := s.invitationJSON(inv)
	if s.opts.AutoAccept {
		s.acceptLocked(inv)
	}
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) cancelInvitation(w http.ResponseWriter, r *http.Request) {
	if _, ok := query(w, r, nil, false); !ok {
		return
	}
	id, err := strconv.ParseInt(r.PathValue("invitation_id"), 10, 64)
	if err != nil {
		notFound(w)
		return
	}
	inv := s.invites[id]
	if inv == nil {
		notFound(w)
		return
	}
	delete(s.invites, id)
	s.dropPendingTeamsLocked(inv)
	target := inv.Login
	if target == "" {
		target = inv.Email
	}
	s.logWrite(r, "DELETE /orgs/{org}/invitations/{invitation_id}", target, "cancel invitation", itoa(id))
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) teamsSorted() []*team {
	out := make([]*team, 0, len(s.teams))
	for _, t := range s.teams {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].slug < out[j].slug })
	return out
}

func (s *Server) listTeams(w http.ResponseWriter, r *http.Request) {
	if _, ok := query(w, r, map[string][]string{"team_type": {"all", "enterprise", "organization"}}, true); !ok {
		return
	}
	ts := s.teamsSorted()
	from, to := page(w, r, len(ts))
	out := make([]map[string]any, 0, to-from)
	for _, t := range ts[from:to] {
		out = append(out, s.teamJSON(t))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getTeam(w http.ResponseWriter, r *http.Request) {
	if _, ok := query(w, r, nil, false); !ok {
		return
	}
	t := s.teams[strings.ToLower(r.PathValue("team_slug"))]
	if t == nil {
		notFound(w)
		return
	}
	writeJSON(w, http.StatusOK, s.teamFull(t))
}

func (s *Server) listTeamMembers(w http.ResponseWriter, r *http.Request) {
	q, ok := query(w, r, map[string][]string{"role": {"all", "member", "maintainer"}}, true)
	if !ok {
		return
	}
	t := s.teams[strings.ToLower(r.PathValue("team_slug"))]
	if t == nil {
		notFound(w)
		return
	}
	var users []*user
	for k, role := range t.members {
		if want := q.Get("role"); want == "" || want == "all" || want == role {
			users = append(users, s.users[k])
		}
	}
	sort.Slice(users, func(i, j int) bool { return users[i].id < users[j].id })
	from, to := page(w, r, len(users))
	out := make([]map[string]any, 0, to-from)
	for _, u := range users[from:to] {
		out = append(out, s.simpleUser(u))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getTeamMembership(w http.ResponseWriter, r *http.Request) {
	if _, ok := query(w, r, nil, false); !ok {
		return
	}
	t := s.teams[strings.ToLower(r.PathValue("team_slug"))]
	u := s.userByLogin(r.PathValue("username"))
	if t == nil || u == nil {
		notFound(w)
		return
	}
	k := strings.ToLower(u.login)
	if role, ok := t.members[k]; ok {
		writeJSON(w, http.StatusOK, s.teamMembership(t, u, "active", role))
		return
	}
	if role, ok := t.pending[k]; ok {
		writeJSON(w, http.StatusOK, s.teamMembership(t, u, "pending", role))
		return
	}
	notFound(w)
}

func (s *Server) putTeamMembership(w http.ResponseWriter, r *http.Request) {
	role, ok := roleBody(w, r, "TeamMember", "member", "maintainer")
	if !ok {
		return
	}
	t := s.teams[strings.ToLower(r.PathValue("team_slug"))]
	u := s.userByLogin(r.PathValue("username"))
	if t == nil || u == nil {
		notFound(w)
		return
	}
	k := strings.ToLower(u.login)
	route := "PUT /orgs/{org}/teams/{team_slug}/memberships/{username}"
	state := "active"
	switch st, _, _ := s.membership(k); st {
	case "active":
		if t.members[k] != role {
			t.members[k] = role
			s.logWrite(r, route, u.login, "team", t.slug+" "+role)
		}
	case "pending":
		state = "pending"
		if t.pending[k] != role {
			t.pending[k] = role
			s.logWrite(r, route, u.login, "team", t.slug+" "+role+" (pending)")
		}
	default:
		// GitHub: "If the user is unaffiliated with the team's
		// organization, this endpoint will send an invitation to the user
		// via email."
		state = "pending"
		s.newInvitation(u.login, "", "direct_member", []int64{t.id})
		t.pending[k] = role
		s.logWrite(r, route, u.login, "invite", "by adding to team "+t.slug)
	}
	writeJSON(w, http.StatusOK, s.teamMembership(t, u, state, role))
}

func (s *Server) deleteTeamMembership(w http.ResponseWriter, r *http.Request) {
	if _, ok := query(w, r, nil, false); !ok {
		return
	}
	t := s.teams[strings.ToLower(r.PathValue("team_slug"))]
	u := s.userByLogin(r.PathValue("username"))
	if t == nil || u == nil {
		notFound(w)
		return
	}
	k := strings.ToLower(u.login)
	_, active := t.members[k]
	_, pending := t.pending[k]
	if !active && !pending {
		notFound(w)
		return
	}
	delete(t.members, k)
	delete(t.pending, k)
	s.logWrite(r, "DELETE /orgs/{org}/teams/{team_slug}/memberships/{username}", u.login, "team removed", t.slug)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) createAccessToken(w http.ResponseWriter, r *http.Request) {
	if _, ok := query(w, r, nil, false); !ok {
		return
	}
	if err := s.verifyJWT(r); err != nil {
		writeJSON(w, http.StatusUnauthorized, apiError{Message: err.Error(), DocumentationURL: "https://docs.github.com/rest"})
		return
	}
	if r.PathValue("installation_id") != itoa(s.opts.App.InstallationID) {
		notFound(w)
		return
	}
	var in struct {
		Repositories  []string          `json:"repositories"`
		RepositoryIDs []int64           `json:"repository_ids"`
		Permissions   map[string]string `json:"permissions"`
	}
	if !body(w, r, &in) {
		return
	}
	tok, exp := s.issueToken()
	perms := map[string]string{}
	if m := s.opts.App.Members; m != "" {
		perms["members"] = m
	}
	writeJSON(w, http.StatusCreated, map[string]any{"token": tok, "expires_at": exp.Format(time.RFC3339),
		"permissions": perms, "repository_selection": "all"})
}

// The JSON objects, with every field the published schemas require.

func (s *Server) simpleUser(u *user) map[string]any {
	base := apiURL + "/users/" + u.login
	return map[string]any{
		"login": u.login, "id": u.id, "node_id": fmt.Sprintf("MDQ6VXNlcj%d", u.id),
		"avatar_url":  fmt.Sprintf("https://avatars.githubusercontent.com/u/%d?v=4", u.id),
		"gravatar_id": "", "url": base, "html_url": "https://github.com/" + u.login,
		"followers_url": base + "/followers", "following_url": base + "/following{/other_user}",
		"gists_url": base + "/gists{/gist_id}", "starred_url": base + "/starred{/owner}{/repo}",
		"subscriptions_url": base + "/subscriptions", "organizations_url": base + "/orgs",
		"repos_url": base + "/repos", "events_url": base + "/events{/privacy}",
		"received_events_url": base + "/received_events", "type": "User", "site_admin": false,
	}
}

func (s *Server) publicUser(u *user) map[string]any {
	m := s.simpleUser(u)
	ts := u.joined.UTC().Format(time.RFC3339)
	var email any
	if u.email != "" {
		email = u.email
	}
	for k, v := range map[string]any{
		"user_view_type": "public", "name": nil, "company": nil, "blog": "", "location": nil, "email": email,
		"hireable": nil, "bio": nil, "public_repos": 0, "public_gists": 0, "followers": 0, "following": 0,
		"created_at": ts, "updated_at": ts,
	} {
		m[k] = v
	}
	return m
}

func (s *Server) orgSimple() map[string]any {
	base := apiURL + "/orgs/" + s.org
	return map[string]any{
		"login": s.org, "id": s.orgID, "node_id": fmt.Sprintf("MDEyOk9yZ2FuaXphdGlvbj%d", s.orgID), "url": base,
		"repos_url": base + "/repos", "events_url": base + "/events", "hooks_url": base + "/hooks",
		"issues_url": base + "/issues", "members_url": base + "/members{/member}",
		"public_members_url": base + "/public_members{/member}",
		"avatar_url":         fmt.Sprintf("https://avatars.githubusercontent.com/u/%d?v=4", s.orgID), "description": nil,
	}
}

func (s *Server) teamOrganization() map[string]any {
	m := s.orgSimple()
	for k, v := range map[string]any{
		"html_url": "https://github.com/" + s.org, "has_organization_projects": true, "has_repository_projects": true,
		"public_repos": 0, "public_gists": 0, "followers": 0, "following": 0, "type": "Organization",
		"created_at": "2014-04-01T00:00:00Z", "updated_at": "2014-04-01T00:00:00Z", "archived_at": nil,
	} {
		m[k] = v
	}
	return m
}

func (s *Server) teamJSON(t *team) map[string]any {
	m := s.teamSimple(t)
	m["parent"], m["type"], m["organization_id"] = nil, "organization", s.orgID
	if p := s.teams[t.parent]; t.parent != "" && p != nil {
		m["parent"] = s.teamSimple(p)
	}
	return m
}

// teamSimple is GitHub's team-simple object (a team's parent).
func (s *Server) teamSimple(t *team) map[string]any {
	base := fmt.Sprintf("%s/organizations/%d/team/%d", apiURL, s.orgID, t.id)
	return map[string]any{
		"id": t.id, "node_id": fmt.Sprintf("MDQ6VGVhbT%d", t.id), "url": base, "html_url": "https://github.com/orgs/" + s.org + "/teams/" + t.slug,
		"name": t.slug, "slug": t.slug, "description": nil, "privacy": "closed", "notification_setting": "notifications_enabled",
		"permission": "pull", "members_url": base + "/members{/member}", "repositories_url": base + "/repos",
	}
}

func (s *Server) teamFull(t *team) map[string]any {
	m := s.teamJSON(t)
	delete(m, "organization_id")
	m["members_count"] = len(t.members)
	m["repos_count"] = 0
	m["created_at"] = "2014-04-01T00:00:00Z"
	m["updated_at"] = "2014-04-01T00:00:00Z"
	m["organization"] = s.teamOrganization()
	return m
}

func (s *Server) invitationJSON(inv *Invitation) map[string]any {
	var login, email any
	if inv.Login != "" {
		login = inv.Login
	}
	if inv.Email != "" {
		email = inv.Email
	}
	m := map[string]any{
		"id": inv.ID, "node_id": fmt.Sprintf("MDIyOk9yZ2FuaXphdGlvbkludml0YXRpb24%d", inv.ID), "login": login, "email": email,
		"role": inv.Role, "created_at": inv.Created.Format(time.RFC3339),
		"inviter":    s.simpleUser(&user{id: 1, login: "roster-bot"}),
		"team_count": len(inv.TeamIDs), "invitation_source": "member",
		"invitation_teams_url": fmt.Sprintf("%s/organizations/%d/invitations/%d/teams", apiURL, s.orgID, inv.ID),
	}
	if inv.FailedReason != "" {
		m["failed_at"] = inv.Created.Add(7 * 24 * time.Hour).Format(time.RFC3339)
		m["failed_reason"] = inv.FailedReason
	}
	return m
}

func (s *Server) orgMembership(u *user, state, role string) map[string]any {
	return map[string]any{
		"url": apiURL + "/orgs/" + s.org + "/memberships/" + u.login, "state": state, "role": role,
		"organization_url": apiURL + "/orgs/" + s.org, "organization": s.orgSimple(), "user": s.simpleUser(u),
	}
}

func (s *Server) teamMembership(t *team, u *user, state, role string) map[string]any {
	return map[string]any{
		"url":  fmt.Sprintf("%s/organizations/%d/team/%d/memberships/%s", apiURL, s.orgID, t.id, u.login),
		"role": role, "state": state,
	}
}
