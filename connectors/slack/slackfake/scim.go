package slackfake

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	schemaUser     = "urn:ietf:params:scim:schemas:core:2.0:User"
	schemaList     = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	schemaError    = "urn:ietf:params:scim:api:messages:2.0:Error"
	schemaPatchOp  = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	schemaSPConfig = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
)

// validUserName is Slack's rule for user names: up to 21 lower-case
// letters, digits, periods, hyphens and underscores.
var validUserName = regexp.MustCompile(`^[a-z0-9._-]{1,21}$`)

// filterExpr is the one filter form Slack documents: attribute eq "value".
var filterExpr = regexp.MustCompile(`^\s*([A-Za-z.]+)\s+(?i:eq)\s+"((?:[^"\\]|\\.)*)"\s*$`)

func scimRoute(method, rest string) (route, bool) {
	rest = strings.TrimSuffix(rest, "/")
	rt := route{tier: "scim"}
	switch {
	case rest == "ServiceProviderConfigs" || rest == "ServiceProviderConfig":
		rt.key, rt.scim = "SCIM "+method+" /ServiceProviderConfigs", (*Server).scimConfig
		return rt, method == http.MethodGet
	case rest == "Users":
		rt.key, rt.scim = "SCIM "+method+" /Users", (*Server).scimUsers
		return rt, method == http.MethodGet || method == http.MethodPost
	case strings.HasPrefix(rest, "Users/") && !strings.Contains(rest[len("Users/"):], "/"):
		rt.key, rt.scim, rt.id = "SCIM "+method+" /Users/{id}", (*Server).scimUser, rest[len("Users/"):]
		switch method {
		case http.MethodGet, http.MethodPatch, http.MethodDelete, http.MethodPut:
			return rt, true
		}
	}
	rt.key = "SCIM other"
	return rt, false
}

func scimError(w http.ResponseWriter, status int, scimType, detail string) {
	body := map[string]any{"schemas": []string{schemaError}, "detail": detail, "status": strconv.Itoa(status)}
	if scimType != "" {
		body["scimType"] = scimType
	}
	writeJSON(w, status, body)
}

// scimAuth checks the SCIM token; false means an answer was written.
func (s *Server) scimAuth(w http.ResponseWriter, r *http.Request) bool {
	tok, _ := bearer(r)
	if tok == "" || tok != s.SCIMToken {
		scimError(w, http.StatusUnauthorized, "", "invalid_authentication")
		return false
	}
	s.mu.Lock()
	admin := s.scopes["admin"]
	s.mu.Unlock()
	if s.SCIMToken == s.Token && !admin {
		scimError(w, http.StatusForbidden, "", "missing_scope: the SCIM API needs the admin scope")
		return false
	}
	return true
}

type scimName struct {
	GivenName  string `json:"givenName"`
	FamilyName string `json:"familyName"`
}

type scimEmail struct {
	Value   string `json:"value"`
	Primary bool   `json:"primary,omitempty"`
	Type    string `json:"type,omitempty"`
}

func (s *Server) scimUserJSON(u *User) map[string]any {
	var groups []map[string]any
	for _, g := range s.groups {
		if slices.Contains(g.users, u.ID) {
			groups = append(groups, map[string]any{"value": g.id, "display": g.name})
		}
	}
	slices.SortFunc(groups, func(a, b map[string]any) int { return strings.Compare(a["value"].(string), b["value"].(string)) })
	if groups == nil {
		groups = []map[string]any{}
	}
	return map[string]any{
		"schemas":     []string{schemaUser},
		"id":          u.ID,
		"externalId":  u.ExternalID,
		"userName":    u.UserName,
		"nickName":    u.UserName,
		"name":        scimName{GivenName: u.GivenName, FamilyName: u.FamilyName},
		"displayName": u.DisplayName,
		"profileUrl":  "https://piedpiper.slack.com/team/" + u.UserName,
		"title":       "",
		"timezone":    "Europe/London",
		"active":      u.Active,
		"emails":      []scimEmail{{Value: u.Email, Primary: true}},
		"photos":      []any{},
		"groups":      groups,
		"meta": map[string]any{
			"created":  u.Created.UTC().Format(time.RFC3339),
			"location": s.SCIMURL() + "Users/" + u.ID,
		},
	}
}

func (s *Server) scimConfig(w http.ResponseWriter, r *http.Request, _ string) {
	if !s.scimAuth(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"schemas":          []string{schemaSPConfig},
		"documentationUri": "https://api.slack.com/scim",
		"patch":            map[string]any{"supported": true},
		"bulk":             map[string]any{"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
		"filter":           map[string]any{"supported": true, "maxResults": 1000},
		"changePassword":   map[string]any{"supported": false},
		"sort":             map[string]any{"supported": false},
		"etag":             map[string]any{"supported": false},
		"authenticationSchemes": []map[string]any{{
			"type": "oauthbearertoken", "name": "OAuth Bearer Token", "primary": true,
			"description": "Authentication scheme using the OAuth Bearer Token Standard",
		}},
	})
}

func (s *Server) scimUsers(w http.ResponseWriter, r *http.Request, _ string) {
	if !s.scimAuth(w, r) {
		return
	}
	if r.Method == http.MethodPost {
		s.scimCreate(w, r)
		return
	}
	q := r.URL.Query()
	start, count := 1, 10 // Slack's default page is 10 users
	if v := q.Get("startIndex"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			scimError(w, http.StatusBadRequest, "invalidValue", "startIndex must be an integer")
			return
		}
		start = max(n, 1)
	}
	if v := q.Get("count"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			scimError(w, http.StatusBadRequest, "invalidValue", "count must be a non-negative integer")
			return
		}
		count = n
	}
	count = min(count, 1000, s.pageLimit)
	var match func(u *User) bool
	if f := q.Get("filter"); f != "" {
		m := filterExpr.FindStringSubmatch(f)
		if m == nil {
			scimError(w, http.StatusBadRequest, "invalidFilter", "unsupported filter: only `attribute eq \"value\"` is supported")
			return
		}
		var value string
		if err := json.Unmarshal([]byte(`"`+m[2]+`"`), &value); err != nil {
			scimError(w, http.StatusBadRequest, "invalidFilter", "bad string in filter")
			return
		}
		switch strings.ToLower(m[1]) {
		case "email":
			match = func(u *User) bool { return strings.EqualFold(u.Email, value) }
		case "username":
			match = func(u *User) bool { return strings.EqualFold(u.UserName, value) }
		default:
			scimError(w, http.StatusBadRequest, "invalidFilter", "filtering on "+m[1]+" is not supported (email, userName)")
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if start > 1 {
		s.calls.NextPages["SCIM GET /Users"]++
	}
	var all []*User
	for _, u := range s.users {
		if match == nil || match(u) {
			all = append(all, u)
		}
	}
	slices.SortFunc(all, func(a, b *User) int { return strings.Compare(a.ID, b.ID) })
	res := []map[string]any{}
	for i := start - 1; i < len(all) && len(res) < count; i++ {
		res = append(res, s.scimUserJSON(all[i]))
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"schemas": []string{schemaList}, "totalResults": len(all), "itemsPerPage": len(res),
		"startIndex": start, "Resources": res,
	})
}

// scimBody decodes a JSON body into v; false means an answer was written.
func scimBody(w http.ResponseWriter, r *http.Request, v any) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != "application/json" && mt != "application/scim+json") {
		scimError(w, http.StatusBadRequest, "invalidSyntax", "the body must be application/json or application/scim+json")
		return false
	}
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		scimError(w, http.StatusBadRequest, "invalidSyntax", "invalid JSON body")
		return false
	}
	return true
}

type scimUserIn struct {
	Schemas     []string    `json:"schemas"`
	UserName    string      `json:"userName"`
	ExternalID  string      `json:"externalId"`
	DisplayName string      `json:"displayName"`
	NickName    string      `json:"nickName"`
	Name        scimName    `json:"name"`
	Emails      []scimEmail `json:"emails"`
	Active      *bool       `json:"active"`
}

func (s *Server) scimCreate(w http.ResponseWriter, r *http.Request) {
	var in scimUserIn
	if !scimBody(w, r, &in) {
		return
	}
	if !slices.Contains(in.Schemas, schemaUser) {
		scimError(w, http.StatusBadRequest, "invalidSyntax", "schemas must include "+schemaUser)
		return
	}
	if !validUserName.MatchString(in.UserName) {
		scimError(w, http.StatusBadRequest, "invalidValue", "invalid_username: up to 21 lower-case letters, digits, periods, hyphens and underscores")
		return
	}
	email := ""
	for _, e := range in.Emails {
		if email == "" || e.Primary {
			email = e.Value
		}
	}
	if at := strings.IndexByte(email, '@'); at < 1 || at == len(email)-1 {
		scimError(w, http.StatusBadRequest, "invalidValue", "invalid_email")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.userByEmailLocked(email) != nil {
		scimError(w, http.StatusConflict, "uniqueness", "email_taken")
		return
	}
	for _, u := range s.users {
		if strings.EqualFold(u.UserName, in.UserName) {
			scimError(w, http.StatusConflict, "uniqueness", "username_taken")
			return
		}
	}
	active := in.Active == nil || *in.Active
	id := s.addUserLocked(User{UserName: in.UserName, Email: email, GivenName: in.Name.GivenName, FamilyName: in.Name.FamilyName,
		DisplayName: in.DisplayName, ExternalID: in.ExternalID, Active: active})
	s.logWrite("scim.create", id, "", email)
	w.Header().Set("Location", s.SCIMURL()+"Users/"+id)
	writeJSON(w, http.StatusCreated, s.scimUserJSON(s.users[id]))
}

func (s *Server) scimUser(w http.ResponseWriter, r *http.Request, id string) {
	if !s.scimAuth(w, r) {
		return
	}
	switch r.Method {
	case http.MethodPut:
		scimError(w, http.StatusNotImplemented, "", "PUT is not implemented by slackfake; use PATCH")
		return
	case http.MethodPatch:
		s.scimPatch(w, r, id)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if !ok {
		scimError(w, http.StatusNotFound, "", "user_not_found")
		return
	}
	if r.Method == http.MethodDelete {
		if u.Active {
			s.deactivateLocked(u)
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, http.StatusOK, s.scimUserJSON(u))
}

type patchOp struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	Value json.RawMessage `json:"value"`
}

type patchBody struct {
	Schemas    []string  `json:"schemas"`
	Operations []patchOp `json:"Operations"`
}

// putObject applies put to every attribute of a path-less PATCH value
// ({"active":false,"name":{"givenName":"A"}}).
func putObject(raw json.RawMessage, put func(path string, raw json.RawMessage, remove bool) string) string {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return "invalidValue"
	}
	for k, v := range obj {
		if k != "name" {
			if bad := put(k, v, false); bad != "" {
				return bad
			}
			continue
		}
		var n map[string]json.RawMessage
		if err := json.Unmarshal(v, &n); err != nil {
			return "invalidValue"
		}
		for nk, nv := range n {
			if bad := put("name."+nk, nv, false); bad != "" {
				return bad
			}
		}
	}
	return ""
}

// patchable are the attributes PATCH may change, by lower-cased path.
func patchable(path string) (string, bool) {
	for _, p := range []string{"active", "externalId", "userName", "displayName", "name.givenName", "name.familyName"} {
		if strings.EqualFold(p, path) {
			return p, true
		}
	}
	return "", false
}

func (s *Server) scimPatch(w http.ResponseWriter, r *http.Request, id string) {
	var body patchBody
	if !scimBody(w, r, &body) {
		return
	}
	if !slices.Contains(body.Schemas, schemaPatchOp) {
		scimError(w, http.StatusBadRequest, "invalidSyntax", "schemas must include "+schemaPatchOp)
		return
	}
	if len(body.Operations) == 0 {
		scimError(w, http.StatusBadRequest, "invalidSyntax", "no Operations")
		return
	}
	// Collect every change first: a PATCH is all or nothing.
	set := map[string]string{}
	var active *bool
	put := func(path string, raw json.RawMessage, remove bool) string {
		attr, ok := patchable(path)
		if !ok {
			return "invalidPath"
		}
		if attr == "active" {
			if remove {
				return "mutability"
			}
			var b bool
			if err := json.Unmarshal(raw, &b); err != nil {
				var str string // Entra ID sends "True" / "False"
				if json.Unmarshal(raw, &str) != nil {
					return "invalidValue"
				}
				if b, err = strconv.ParseBool(strings.ToLower(str)); err != nil {
					return "invalidValue"
				}
			}
			active = &b
			return ""
		}
		if remove {
			if attr == "userName" {
				return "mutability"
			}
			set[attr] = ""
			return ""
		}
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			return "invalidValue"
		}
		set[attr] = v
		return ""
	}
	for _, op := range body.Operations {
		var bad string
		switch strings.ToLower(op.Op) {
		case "add", "replace":
			if op.Path != "" {
				bad = put(op.Path, op.Value, false)
				break
			}
			bad = putObject(op.Value, put)
		case "remove":
			bad = put(op.Path, nil, true)
		default:
			bad = "invalidSyntax"
		}
		if bad != "" {
			scimError(w, http.StatusBadRequest, bad, fmt.Sprintf("cannot %s %q", op.Op, op.Path))
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if !ok {
		scimError(w, http.StatusNotFound, "", "user_not_found")
		return
	}
	if v, ok := set["userName"]; ok {
		if !validUserName.MatchString(v) {
			scimError(w, http.StatusBadRequest, "invalidValue", "invalid_username")
			return
		}
		for _, o := range s.users {
			if o.ID != u.ID && strings.EqualFold(o.UserName, v) {
				scimError(w, http.StatusConflict, "uniqueness", "username_taken")
				return
			}
		}
	}
	var changed []string
	for _, attr := range []string{"externalId", "userName", "displayName", "name.givenName", "name.familyName"} {
		v, ok := set[attr]
		if !ok {
			continue
		}
		var field *string
		switch attr {
		case "externalId":
			field = &u.ExternalID
		case "userName":
			field = &u.UserName
		case "displayName":
			field = &u.DisplayName
		case "name.givenName":
			field = &u.GivenName
		case "name.familyName":
			field = &u.FamilyName
		}
		if *field != v {
			*field = v
			changed = append(changed, attr+"="+v)
		}
	}
	if len(changed) > 0 {
		s.logWrite("scim.update", u.ID, "", strings.Join(changed, " "))
	}
	if active != nil && *active != u.Active {
		if *active {
			u.Active = true
			s.logWrite("scim.reactivate", u.ID, "", u.Email)
		} else {
			s.deactivateLocked(u)
		}
	}
	writeJSON(w, http.StatusOK, s.scimUserJSON(u))
}
