package slackfake

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// webMethod is one Web API method.
type webMethod struct {
	tier string
	// write methods accept JSON bodies; read methods ignore them, as
	// Slack does.
	write bool
	// accepted is the X-Accepted-OAuth-Scopes value.
	accepted string
	run      func(s *Server, p url.Values) (map[string]any, *apiError)
}

// apiError is an {"ok":false} answer.
type apiError struct {
	code   string
	needed string
}

func fail(code string) *apiError { return &apiError{code: code} }

func lookupWebMethod(name string) (webMethod, bool) {
	switch name {
	case "auth.test":
		return webMethod{tier: "special", write: true, run: (*Server).authTest}, true
	case "users.list":
		return webMethod{tier: "tier2", accepted: "users:read", run: (*Server).usersList}, true
	case "users.info":
		return webMethod{tier: "tier4", accepted: "users:read", run: (*Server).usersInfo}, true
	case "users.lookupByEmail":
		return webMethod{tier: "tier3", accepted: "users:read.email", run: (*Server).usersLookupByEmail}, true
	case "usergroups.list":
		return webMethod{tier: "tier2", accepted: "usergroups:read", run: (*Server).usergroupsList}, true
	case "usergroups.users.list":
		return webMethod{tier: "tier2", accepted: "usergroups:read", run: (*Server).usergroupsUsersList}, true
	case "usergroups.users.update":
		return webMethod{tier: "tier2", write: true, accepted: "usergroups:write", run: (*Server).usergroupsUsersUpdate}, true
	case "usergroups.enable":
		return webMethod{tier: "tier2", write: true, accepted: "usergroups:write", run: (*Server).usergroupsEnable}, true
	case "usergroups.disable":
		return webMethod{tier: "tier2", write: true, accepted: "usergroups:write", run: (*Server).usergroupsDisable}, true
	case "conversations.list":
		return webMethod{tier: "tier2", accepted: "channels:read,groups:read", run: (*Server).conversationsList}, true
	case "conversations.members":
		return webMethod{tier: "tier4", accepted: "channels:read,groups:read", run: (*Server).conversationsMembers}, true
	case "conversations.invite":
		return webMethod{tier: "tier3", write: true, accepted: "channels:manage,channels:write,groups:write", run: (*Server).conversationsInvite}, true
	case "conversations.kick":
		return webMethod{tier: "tier3", write: true, accepted: "channels:manage,channels:write,groups:write", run: (*Server).conversationsKick}, true
	}
	return webMethod{}, false
}

func (s *Server) serveWeb(name string, m webMethod, w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	scopes := strings.Join(sortedKeys(s.scopes), ",")
	s.mu.Unlock()
	w.Header().Set("X-OAuth-Scopes", scopes)
	w.Header().Set("X-Accepted-OAuth-Scopes", m.accepted)
	answer := func(resp map[string]any, e *apiError) {
		if e != nil {
			body := map[string]any{"ok": false, "error": e.code}
			if e.needed != "" {
				body["needed"] = e.needed
				body["provided"] = scopes
			}
			writeJSON(w, http.StatusOK, body)
			return
		}
		resp["ok"] = true
		writeJSON(w, http.StatusOK, resp)
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"ok": false, "error": "method_not_allowed"})
		return
	}
	params, isJSON, perr := webParams(r, m.write)
	if perr != nil {
		answer(nil, perr)
		return
	}
	tok, hasHeader := bearer(r)
	switch {
	case hasHeader && tok == "":
		answer(nil, fail("invalid_auth"))
		return
	case !hasHeader && isJSON:
		// A JSON body cannot carry the token.
		answer(nil, fail("not_authed"))
		return
	case !hasHeader:
		tok = params.Get("token")
	}
	if tok == "" {
		answer(nil, fail("not_authed"))
		return
	}
	if tok != s.Token {
		answer(nil, fail("invalid_auth"))
		return
	}
	s.mu.Lock()
	resp, e := m.run(s, params)
	s.mu.Unlock()
	answer(resp, e)
}

// webParams reads a method's arguments from the query string and the body.
func webParams(r *http.Request, write bool) (url.Values, bool, *apiError) {
	q := r.URL.Query()
	if r.Method == http.MethodGet {
		return q, false, nil
	}
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct != "" && err != nil {
		return nil, false, fail("invalid_post_type")
	}
	switch mt {
	case "", "application/x-www-form-urlencoded":
		if err := r.ParseForm(); err != nil {
			return nil, false, fail("invalid_form_data")
		}
		return r.Form, false, nil
	case "multipart/form-data":
		if err := r.ParseMultipartForm(1 << 20); err != nil {
			return nil, false, fail("invalid_form_data")
		}
		return r.Form, false, nil
	case "application/json":
		if !write {
			// Slack reads a read method's arguments from the query string
			// and form only.
			return q, true, nil
		}
		var body map[string]any
		dec := json.NewDecoder(r.Body)
		dec.UseNumber()
		if err := dec.Decode(&body); err != nil {
			return nil, true, fail("invalid_json")
		}
		for k, v := range body {
			switch x := v.(type) {
			case string:
				q.Set(k, x)
			case bool:
				q.Set(k, strconv.FormatBool(x))
			case json.Number:
				q.Set(k, x.String())
			case []any:
				parts := make([]string, 0, len(x))
				for _, e := range x {
					parts = append(parts, fmt.Sprint(e))
				}
				q.Set(k, strings.Join(parts, ","))
			case nil:
			default:
				return nil, true, fail("invalid_array_arg")
			}
		}
		return q, true, nil
	}
	return nil, false, fail("invalid_post_type")
}

// needLocked checks that the token holds one of scopes.
func (s *Server) needLocked(scopes ...string) *apiError {
	for _, sc := range scopes {
		if s.scopes[sc] {
			return nil
		}
	}
	return &apiError{code: "missing_scope", needed: strings.Join(scopes, ",")}
}

func truthy(v string) bool { return v == "true" || v == "1" }

// pageLocked cuts one page out of ids (sorted), Slack style: limit (0 or
// absent: def), an opaque cursor naming the last id served.
func (s *Server) pageLocked(method, kind string, ids []string, p url.Values, def int) ([]string, string, *apiError) {
	limit := def
	if v := p.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 1000 {
			return nil, "", fail("invalid_limit")
		}
		if n > 0 {
			limit = n
		}
	}
	limit = min(limit, s.pageLimit)
	start := 0
	if c := p.Get("cursor"); c != "" {
		raw, err := base64.StdEncoding.DecodeString(c)
		after, ok := strings.CutPrefix(string(raw), kind+":")
		if err != nil || !ok || after == "" {
			return nil, "", fail("invalid_cursor")
		}
		start = sort.SearchStrings(ids, after)
		if start < len(ids) && ids[start] == after {
			start++
		}
		s.calls.NextPages[method]++
	}
	end := min(start+limit, len(ids))
	next := ""
	if end < len(ids) {
		next = base64.StdEncoding.EncodeToString([]byte(kind + ":" + ids[end-1]))
	}
	return ids[start:end], next, nil
}

func (s *Server) authTest(url.Values) (map[string]any, *apiError) {
	return map[string]any{
		"url": "https://piedpiper.slack.com/", "team": s.teamName, "user": "admin",
		"team_id": s.teamID, "user_id": s.admin, "is_enterprise_install": false,
	}, nil
}

func (s *Server) userJSON(u *User) map[string]any {
	real := strings.TrimSpace(u.GivenName + " " + u.FamilyName)
	return map[string]any{
		"id": u.ID, "team_id": s.teamID, "name": u.UserName, "deleted": !u.Active, "color": "9f69e7",
		"real_name": real, "tz": "Europe/London", "tz_label": "Greenwich Mean Time", "tz_offset": 0,
		"profile": map[string]any{
			"real_name": real, "real_name_normalized": real, "display_name": u.DisplayName,
			"display_name_normalized": u.DisplayName, "avatar_hash": "ge3b51ca72de", "title": "", "phone": "",
			"skype": "", "status_text": "", "status_emoji": "", "fields": map[string]any{}, "email": u.Email,
			"first_name": u.GivenName, "last_name": u.FamilyName, "team": s.teamID,
		},
		"is_admin": u.Admin, "is_owner": u.Admin, "is_primary_owner": u.Admin, "is_restricted": false,
		"is_ultra_restricted": false, "is_bot": false, "is_app_user": false, "updated": u.Created.Unix(),
		"has_2fa": u.Has2FA,
	}
}

// slackbotJSON is the Slackbot user every workspace lists.
func (s *Server) slackbotJSON() map[string]any {
	return map[string]any{
		"id": "USLACKBOT", "team_id": s.teamID, "name": "slackbot", "deleted": false, "color": "757575",
		"real_name": "Slackbot", "tz": "America/Los_Angeles", "tz_label": "Pacific Standard Time", "tz_offset": -28800,
		"profile": map[string]any{
			"real_name": "Slackbot", "real_name_normalized": "Slackbot", "display_name": "Slackbot",
			"display_name_normalized": "Slackbot", "avatar_hash": "sv41d8cd98f0", "title": "", "phone": "",
			"skype": "", "status_text": "", "status_emoji": "", "fields": nil, "team": s.teamID,
		},
		"is_admin": false, "is_owner": false, "is_primary_owner": false, "is_restricted": false,
		"is_ultra_restricted": false, "is_bot": false, "is_app_user": false, "updated": 0,
	}
}

func (s *Server) usersList(p url.Values) (map[string]any, *apiError) {
	if e := s.needLocked("users:read"); e != nil {
		return nil, e
	}
	ids := make([]string, 0, len(s.users)+1)
	for id := range s.users {
		ids = append(ids, id)
	}
	ids = append(ids, "USLACKBOT")
	slices.Sort(ids)
	page, next, e := s.pageLocked("users.list", "user", ids, p, 200)
	if e != nil {
		return nil, e
	}
	members := make([]map[string]any, 0, len(page))
	for _, id := range page {
		if id == "USLACKBOT" {
			members = append(members, s.slackbotJSON())
			continue
		}
		members = append(members, s.userJSON(s.users[id]))
	}
	return map[string]any{
		"members": members, "cache_ts": s.now().Unix(),
		"response_metadata": map[string]any{"next_cursor": next},
	}, nil
}

func (s *Server) usersInfo(p url.Values) (map[string]any, *apiError) {
	if e := s.needLocked("users:read"); e != nil {
		return nil, e
	}
	u, ok := s.users[p.Get("user")]
	if !ok {
		return nil, fail("user_not_found")
	}
	return map[string]any{"user": s.userJSON(u)}, nil
}

func (s *Server) usersLookupByEmail(p url.Values) (map[string]any, *apiError) {
	if e := s.needLocked("users:read.email"); e != nil {
		return nil, e
	}
	u := s.userByEmailLocked(p.Get("email"))
	if u == nil || p.Get("email") == "" {
		return nil, fail("users_not_found")
	}
	return map[string]any{"user": s.userJSON(u)}, nil
}

// subteamJSON renders a user group as objs_subteam (no other property).
func (s *Server) subteamJSON(g *usergroup, withUsers, withCount bool) map[string]any {
	var deleted, deletedBy any
	deleted = int64(0)
	if g.disabled {
		deleted, deletedBy = g.updated.Unix(), g.updatedBy
	}
	m := map[string]any{
		"id": g.id, "team_id": s.teamID, "is_usergroup": true, "is_subteam": true, "name": g.name,
		"description": g.description, "handle": g.handle, "is_external": false,
		"date_create": g.created.Unix(), "date_update": g.updated.Unix(), "date_delete": deleted,
		"auto_type": nil, "auto_provision": false, "enterprise_subteam_id": "", "created_by": g.createdBy,
		"updated_by": g.updatedBy, "deleted_by": deletedBy,
		"prefs": map[string]any{"channels": []string{}, "groups": []string{}},
	}
	if withUsers {
		m["users"] = append([]string{}, g.users...)
	}
	if withCount {
		m["user_count"] = len(g.users)
	}
	return m
}

func (s *Server) usergroupsList(p url.Values) (map[string]any, *apiError) {
	if e := s.needLocked("usergroups:read"); e != nil {
		return nil, e
	}
	gs := make([]*usergroup, 0, len(s.groups))
	for _, g := range s.groups {
		if g.disabled && !truthy(p.Get("include_disabled")) {
			continue
		}
		gs = append(gs, g)
	}
	sort.Slice(gs, func(i, j int) bool { return gs[i].handle < gs[j].handle })
	out := make([]map[string]any, 0, len(gs))
	for _, g := range gs {
		out = append(out, s.subteamJSON(g, truthy(p.Get("include_users")), truthy(p.Get("include_count"))))
	}
	return map[string]any{"usergroups": out}, nil
}

// groupArgLocked finds the group named by the "usergroup" argument; a
// disabled one only with include_disabled when readOnly.
func (s *Server) groupArgLocked(p url.Values, includeDisabled bool) (*usergroup, *apiError) {
	id := p.Get("usergroup")
	if id == "" {
		return nil, fail("invalid_arguments")
	}
	g, ok := s.groups[id]
	if !ok || g.disabled && !includeDisabled {
		return nil, fail("no_such_subteam")
	}
	return g, nil
}

func (s *Server) usergroupsUsersList(p url.Values) (map[string]any, *apiError) {
	if e := s.needLocked("usergroups:read"); e != nil {
		return nil, e
	}
	g, e := s.groupArgLocked(p, truthy(p.Get("include_disabled")))
	if e != nil {
		return nil, e
	}
	return map[string]any{"users": append([]string{}, g.users...)}, nil
}

func (s *Server) usergroupsUsersUpdate(p url.Values) (map[string]any, *apiError) {
	if e := s.needLocked("usergroups:write"); e != nil {
		return nil, e
	}
	g, e := s.groupArgLocked(p, !s.roGroups)
	if e != nil {
		return nil, e
	}
	var ids []string
	for _, id := range strings.Split(p.Get("users"), ",") {
		if id = strings.TrimSpace(id); id != "" {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		// Slack refuses to empty a group this way.
		return nil, fail("invalid_users")
	}
	for _, id := range ids {
		if u, ok := s.users[id]; !ok || !u.Active {
			return nil, fail("invalid_users")
		}
	}
	g.users = sortedUnique(ids)
	g.updated, g.updatedBy = s.now().UTC(), s.admin
	s.logWrite("usergroups.users.update", g.id, strings.Join(g.users, ","), g.handle)
	return map[string]any{"usergroup": s.subteamJSON(g, true, truthy(p.Get("include_count")))}, nil
}

func (s *Server) usergroupsEnable(p url.Values) (map[string]any, *apiError) {
	return s.setGroupDisabled(p, false)
}

func (s *Server) usergroupsDisable(p url.Values) (map[string]any, *apiError) {
	return s.setGroupDisabled(p, true)
}

func (s *Server) setGroupDisabled(p url.Values, disabled bool) (map[string]any, *apiError) {
	if e := s.needLocked("usergroups:write"); e != nil {
		return nil, e
	}
	g, e := s.groupArgLocked(p, true)
	if e != nil {
		return nil, e
	}
	if g.disabled != disabled {
		g.disabled = disabled
		g.updated, g.updatedBy = s.now().UTC(), s.admin
		op := "usergroups.enable"
		if disabled {
			op = "usergroups.disable"
		}
		s.logWrite(op, g.id, "", g.handle)
	}
	return map[string]any{"usergroup": s.subteamJSON(g, false, truthy(p.Get("include_count")))}, nil
}

func (s *Server) conversationJSON(c *channel) map[string]any {
	topic := map[string]any{"value": "", "creator": "", "last_set": 0}
	return map[string]any{
		"id": c.id, "name": c.name, "name_normalized": c.name, "is_channel": true, "is_group": false,
		"is_im": false, "is_mpim": false, "is_private": c.private, "created": c.created.Unix(),
		"creator": c.creator, "is_archived": c.archived, "is_general": false, "unlinked": 0, "is_shared": false,
		"is_org_shared": false, "is_ext_shared": false, "is_pending_ext_shared": false,
		"is_member": c.members[s.admin], "previous_names": []string{}, "num_members": len(c.members),
		"topic": topic, "purpose": topic,
	}
}

func (s *Server) conversationsList(p url.Values) (map[string]any, *apiError) {
	types := p.Get("types")
	if types == "" {
		types = "public_channel"
	}
	public, private := false, false
	for _, t := range strings.Split(types, ",") {
		switch strings.TrimSpace(t) {
		case "public_channel":
			public = true
		case "private_channel":
			private = true
		case "im", "mpim":
			// The fake has no direct messages.
		default:
			return nil, fail("invalid_types")
		}
	}
	if public {
		if e := s.needLocked("channels:read"); e != nil {
			return nil, e
		}
	}
	if private {
		if e := s.needLocked("groups:read"); e != nil {
			return nil, e
		}
	}
	var ids []string
	for id, c := range s.channels {
		switch {
		case c.archived && truthy(p.Get("exclude_archived")):
		case c.private && (!private || !c.members[s.admin]):
		case !c.private && !public:
		default:
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	page, next, e := s.pageLocked("conversations.list", "channel", ids, p, 100)
	if e != nil {
		return nil, e
	}
	out := make([]map[string]any, 0, len(page))
	for _, id := range page {
		out = append(out, s.conversationJSON(s.channels[id]))
	}
	return map[string]any{"channels": out, "response_metadata": map[string]any{"next_cursor": next}}, nil
}

// channelArgLocked finds the channel named by the "channel" argument and
// checks the token's scope for its type (read or write).
func (s *Server) channelArgLocked(p url.Values, write bool) (*channel, *apiError) {
	c, ok := s.channels[p.Get("channel")]
	if !ok || c.private && !c.members[s.admin] {
		return nil, fail("channel_not_found")
	}
	var e *apiError
	switch {
	case !write && c.private:
		e = s.needLocked("groups:read")
	case !write:
		e = s.needLocked("channels:read")
	case c.private:
		e = s.needLocked("groups:write")
	default:
		e = s.needLocked("channels:manage", "channels:write")
	}
	return c, e
}

func (s *Server) conversationsMembers(p url.Values) (map[string]any, *apiError) {
	c, e := s.channelArgLocked(p, false)
	if e != nil {
		return nil, e
	}
	page, next, e := s.pageLocked("conversations.members", "member", sortedKeys(c.members), p, 100)
	if e != nil {
		return nil, e
	}
	return map[string]any{"members": append([]string{}, page...), "response_metadata": map[string]any{"next_cursor": next}}, nil
}

func (s *Server) conversationsInvite(p url.Values) (map[string]any, *apiError) {
	c, e := s.channelArgLocked(p, true)
	if e != nil {
		return nil, e
	}
	if c.archived {
		return nil, fail("is_archived")
	}
	if !c.members[s.admin] {
		return nil, fail("not_in_channel")
	}
	var ids []string
	for _, id := range strings.Split(p.Get("users"), ",") {
		if id = strings.TrimSpace(id); id != "" {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil, fail("no_user")
	}
	if len(ids) > 1000 {
		return nil, fail("too_many_users")
	}
	var add []string
	for _, id := range ids {
		u, ok := s.users[id]
		switch {
		case !ok:
			return nil, fail("user_not_found")
		case id == s.admin:
			return nil, fail("cant_invite_self")
		case !u.Active:
			return nil, fail("cant_invite")
		case !c.members[id]:
			add = append(add, id)
		}
	}
	if len(add) == 0 {
		return nil, fail("already_in_channel")
	}
	for _, id := range add {
		c.members[id] = true
		s.logWrite("conversations.invite", c.id, id, c.name)
	}
	return map[string]any{"channel": s.conversationJSON(c)}, nil
}

func (s *Server) conversationsKick(p url.Values) (map[string]any, *apiError) {
	c, e := s.channelArgLocked(p, true)
	if e != nil {
		return nil, e
	}
	id := p.Get("user")
	if _, ok := s.users[id]; !ok {
		return nil, fail("user_not_found")
	}
	if id == s.admin {
		return nil, fail("cant_kick_self")
	}
	if !c.members[id] {
		return nil, fail("not_in_channel")
	}
	delete(c.members, id)
	s.logWrite("conversations.kick", c.id, id, c.name)
	return map[string]any{}, nil
}
