package hr

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/elimity-com/scim"
	scimerrors "github.com/elimity-com/scim/errors"
	"github.com/elimity-com/scim/optional"
	"github.com/scim2/filter-parser/v2"

	"github.com/rosterhq/roster/connectors"
	"github.com/rosterhq/roster/lifecycle"
)

// userHandler serves /Users: each User is a worker's HR record.
type userHandler struct{ s *server }

// groupHandler serves /Groups: each Group is a lifecycle.HRGroup.
type groupHandler struct{ s *server }

var (
	_ scim.ResourceHandler = (*userHandler)(nil)
	_ scim.ResourceHandler = (*groupHandler)(nil)
)

// storeError turns a Store error into the SCIM error the client gets;
// storage failures are logged and answered 500 without detail.
func (s *server) storeError(r *http.Request, err error) error {
	var fe *fieldError
	switch {
	case errors.As(err, &fe):
		return invalidValue(fe.Error())
	case errors.Is(err, lifecycle.ErrNotFound):
		return scimerrors.ScimError{Status: http.StatusNotFound, Detail: "no such resource"}
	case errors.Is(err, lifecycle.ErrConflict):
		e := scimerrors.ScimErrorUniqueness
		e.Detail = strings.TrimPrefix(err.Error(), "lifecycle: ")
		return e
	case errors.Is(err, lifecycle.ErrInvalidRecord):
		return invalidValue(strings.TrimPrefix(err.Error(), "lifecycle: "))
	}
	s.log.ErrorContext(r.Context(), "scim: store", "method", r.Method, "path", r.URL.Path, "err", err)
	return scimerrors.ScimError{Status: http.StatusInternalServerError, Detail: "internal error; see the server log"}
}

func notFound(kind, id string) error {
	return scimerrors.ScimErrorResourceNotFound(kind + " " + id)
}

func (s *server) changed(id connectors.WorkerID, transition string) {
	if s.onChange != nil {
		s.onChange(id, transition)
	}
}

func etag(version uint64) string { return fmt.Sprintf(`W/"%d"`, version) }

func meta(created, modified time.Time, version uint64) scim.Meta {
	c, m := created.UTC(), modified.UTC()
	return scim.Meta{Created: &c, LastModified: &m, Version: etag(version)}
}

// metaDoc is meta as filters see it (meta.lastModified gt "…" compares
// RFC 3339 UTC strings, which sort as the times do).
func metaDoc(resourceType string, created, modified time.Time, version uint64) map[string]any {
	return map[string]any{"resourceType": resourceType, "created": created.UTC().Format(time.RFC3339),
		"lastModified": modified.UTC().Format(time.RFC3339), "version": etag(version)}
}

// checkIfMatch enforces an If-Match header (412 when it names another
// version).
func checkIfMatch(r *http.Request, version uint64) error {
	h := r.Header.Get("If-Match")
	if h == "" {
		return nil
	}
	weak := etag(version)
	for _, t := range strings.Split(h, ",") {
		if t = strings.TrimSpace(t); t == "*" || t == weak || t == weak[2:] {
			return nil
		}
	}
	return scimerrors.ScimError{Status: http.StatusPreconditionFailed, Detail: "the resource is at version " + weak}
}

// docFrom copies the attributes the library validated into a resource
// document; a multi-valued attribute sent as one object becomes a list.
func docFrom(attrs scim.ResourceAttributes, v *resSchema) map[string]any {
	doc := make(map[string]any, len(attrs))
	for k, x := range attrs {
		if a, ok := attribute(&v.core, k); ok && a.MultiValued() {
			x = asList(x)
		}
		doc[k] = x
	}
	return doc
}

// resource builds the library's resource from a document, applying the
// request's attributes/excludedAttributes parameters.
func resource(r *http.Request, v *resSchema, id string, doc map[string]any, m scim.Meta) scim.Resource {
	if r != nil {
		q := r.URL.Query()
		if a := q.Get("attributes"); a != "" {
			doc = keepAttributes(doc, v, splitList(a))
		}
		for _, p := range splitList(q.Get("excludedAttributes")) {
			removeAttribute(doc, v, p)
		}
	}
	res := scim.Resource{ID: id, Attributes: doc, Meta: m}
	if x, ok := doc["externalId"].(string); ok {
		if x != "" {
			res.ExternalID = optional.NewString(x)
		}
		delete(doc, "externalId")
	}
	return res
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// removeAttribute drops the attribute (or sub-attribute, or whole
// extension) path p names from doc; unknown paths are ignored.
func removeAttribute(doc map[string]any, v *resSchema, p string) {
	if ext, ok := v.extension(p); ok {
		del(doc, ext.ID)
		return
	}
	ap, err := filter.ParseAttrPath([]byte(p))
	if err != nil {
		return
	}
	_, key, ok := v.container(ap.URI())
	if !ok {
		return
	}
	c := doc
	if key != "" {
		if c, _ = lookupMap(doc, key); c == nil {
			return
		}
	}
	if sub := ap.SubAttributeName(); sub != "" {
		val, _ := lookup(c, ap.AttributeName)
		for _, x := range asList(val) {
			if m, ok := x.(map[string]any); ok {
				del(m, sub)
			}
		}
	} else {
		del(c, ap.AttributeName)
	}
	if key != "" && len(c) == 0 {
		del(doc, key)
	}
}

// keepAttributes returns the part of doc the attributes parameter asks
// for (whole attributes; a sub-attribute keeps its attribute).
func keepAttributes(doc map[string]any, v *resSchema, paths []string) map[string]any {
	out := map[string]any{}
	for _, p := range paths {
		if ext, ok := v.extension(p); ok {
			if x, ok := lookup(doc, ext.ID); ok {
				out[ext.ID] = x
			}
			continue
		}
		ap, err := filter.ParseAttrPath([]byte(p))
		if err != nil {
			continue
		}
		_, key, ok := v.container(ap.URI())
		if !ok {
			continue
		}
		src, dst := doc, out
		if key != "" {
			if src, _ = lookupMap(doc, key); src == nil {
				continue
			}
			if dst, _ = out[key].(map[string]any); dst == nil {
				dst = map[string]any{}
				out[key] = dst
			}
		}
		for k, x := range src {
			if strings.EqualFold(k, ap.AttributeName) {
				dst[k] = x
			}
		}
	}
	return out
}

// page cuts one page out of n results (startIndex is 1-based).
func page(n int, p scim.ListRequestParams) (start, end int) {
	start = min(max(p.StartIndex-1, 0), n)
	end = min(start+max(p.Count, 0), n)
	return start, end
}

// pageOf is the page p asks for of all, which match the request's filter,
// in their stable order.
func pageOf[T any](all []T, p scim.ListRequestParams, conv func(T) scim.Resource) scim.Page {
	start, end := page(len(all), p)
	out := scim.Page{TotalResults: len(all), Resources: make([]scim.Resource, 0, end-start)}
	for _, x := range all[start:end] {
		out.Resources = append(out.Resources, conv(x))
	}
	return out
}

func filterOf(p scim.ListRequestParams) filter.Expression {
	if p.FilterValidator == nil {
		return nil
	}
	return p.FilterValidator.GetFilter()
}

// eqLookup recognises `attr eq "value"` on a top-level core attribute,
// which the store answers from an index.
func eqLookup(e filter.Expression, attr string) (string, bool) {
	ae, ok := e.(*filter.AttributeExpression)
	if !ok || ae.Operator != filter.EQ || ae.AttributePath.SubAttribute != nil ||
		!strings.EqualFold(ae.AttributePath.AttributeName, attr) {
		return "", false
	}
	if uri := ae.AttributePath.URI(); uri != "" && uri != UserSchema {
		return "", false
	}
	v, ok := ae.CompareValue.(string)
	return unescapeLiteral(v), ok
}

func badFilter(err error) error {
	e := scimerrors.ScimErrorInvalidFilter
	e.Detail = err.Error()
	return e
}

// --- Users ---

// live returns a worker SCIM can see: not deleted.
func (h *userHandler) live(r *http.Request, id string) (*lifecycle.Worker, error) {
	w, err := h.s.store.Worker(r.Context(), connectors.WorkerID(id))
	if err != nil {
		if errors.Is(err, lifecycle.ErrNotFound) {
			return nil, notFound("User", id)
		}
		return nil, h.s.storeError(r, err)
	}
	if w.Deleted {
		return nil, notFound("User", id)
	}
	return w, nil
}

func (h *userHandler) resource(r *http.Request, w *lifecycle.Worker) scim.Resource {
	return resource(r, h.s.users, string(w.ID), h.s.mapping.toDoc(&w.HR), meta(w.CreatedAt, w.UpdatedAt, w.Version))
}

// write stores rec and reports the change.
func (h *userHandler) write(r *http.Request, rec lifecycle.HRRecord, before uint64) (scim.Resource, error) {
	w, tr, err := h.s.store.UpsertHR(r.Context(), actorOf(r.Context()), rec)
	if err != nil {
		return scim.Resource{}, h.s.storeError(r, err)
	}
	if before == 0 || w.Version != before {
		h.s.changed(w.ID, tr)
	}
	return h.resource(r, w), nil
}

func (h *userHandler) Create(r *http.Request, attrs scim.ResourceAttributes) (scim.Resource, error) {
	rec, err := h.s.mapping.toRecord(docFrom(attrs, h.s.users), &lifecycle.HRRecord{Active: true})
	if err != nil {
		return scim.Resource{}, h.s.storeError(r, err)
	}
	rec.ID = h.s.store.NewWorkerID()
	return h.write(r, rec, 0)
}

func (h *userHandler) Get(r *http.Request, id string) (scim.Resource, error) {
	w, err := h.live(r, id)
	if err != nil {
		return scim.Resource{}, err
	}
	return h.resource(r, w), nil
}

func (h *userHandler) GetAll(r *http.Request, p scim.ListRequestParams) (scim.Page, error) {
	ctx := r.Context()
	expr := filterOf(p)
	var ws []*lifecycle.Worker
	one := func(w *lifecycle.Worker, err error) error {
		switch {
		case err == nil:
			ws = append(ws, w)
		case !errors.Is(err, lifecycle.ErrNotFound):
			return h.s.storeError(r, err)
		}
		return nil
	}
	var err error
	if v, ok := eqLookup(expr, "userName"); ok && h.s.mapping.userNamePath {
		err = one(h.s.store.WorkerByUserName(ctx, v))
	} else if v, ok := eqLookup(expr, "externalId"); ok {
		err = one(h.s.store.WorkerByExternalID(ctx, v))
	} else {
		all, serr := h.s.store.Workers(ctx)
		if serr != nil {
			return scim.Page{}, h.s.storeError(r, serr)
		}
		for _, w := range all {
			if w.Deleted {
				continue
			}
			if expr != nil {
				doc := h.s.mapping.toDoc(&w.HR)
				doc["id"], doc["meta"] = string(w.ID), metaDoc("User", w.CreatedAt, w.UpdatedAt, w.Version)
				ok, ferr := matchFilter(expr, doc, h.s.users)
				if ferr != nil {
					return scim.Page{}, badFilter(ferr)
				}
				if !ok {
					continue
				}
			}
			ws = append(ws, w)
		}
	}
	if err != nil {
		return scim.Page{}, err
	}
	return pageOf(ws, p, func(w *lifecycle.Worker) scim.Resource { return h.resource(r, w) }), nil
}

func (h *userHandler) Replace(r *http.Request, id string, attrs scim.ResourceAttributes) (scim.Resource, error) {
	return h.update(r, id, func(old *lifecycle.Worker) (map[string]any, error) {
		doc := docFrom(attrs, h.s.users)
		if _, ok := lookup(doc, "externalId"); !ok && old.HR.ExternalID != "" {
			doc["externalId"] = old.HR.ExternalID // a PUT without externalId keeps it (Okta sends none)
		}
		return doc, nil
	})
}

func (h *userHandler) Patch(r *http.Request, id string, ops []scim.PatchOperation) (scim.Resource, error) {
	return h.update(r, id, func(old *lifecycle.Worker) (map[string]any, error) {
		doc := h.s.mapping.toDoc(&old.HR)
		return doc, applyPatch(doc, h.s.users, ops)
	})
}

// update is PUT and PATCH: under the resource's lock, read the live user,
// check If-Match, build the new representation from the old and store it.
func (h *userHandler) update(r *http.Request, id string, build func(old *lifecycle.Worker) (map[string]any, error)) (scim.Resource, error) {
	defer h.s.lock("User", id)()
	old, err := h.live(r, id)
	if err != nil {
		return scim.Resource{}, err
	}
	if err := checkIfMatch(r, old.Version); err != nil {
		return scim.Resource{}, err
	}
	doc, err := build(old)
	if err != nil {
		return scim.Resource{}, err
	}
	rec, err := h.s.mapping.toRecord(doc, &old.HR)
	if err != nil {
		return scim.Resource{}, h.s.storeError(r, err)
	}
	return h.write(r, rec, old.Version)
}

func (h *userHandler) Delete(r *http.Request, id string) error {
	defer h.s.lock("User", id)()
	old, err := h.live(r, id)
	if err != nil {
		return err
	}
	if err := checkIfMatch(r, old.Version); err != nil {
		return err
	}
	w, tr, err := h.s.store.DeleteHR(r.Context(), actorOf(r.Context()), old.ID)
	if err != nil {
		return h.s.storeError(r, err)
	}
	h.s.changed(w.ID, tr)
	return nil
}

// --- Groups ---

func groupDoc(g *lifecycle.HRGroup) map[string]any {
	doc := map[string]any{"displayName": g.DisplayName}
	if g.ExternalID != "" {
		doc["externalId"] = g.ExternalID
	}
	if len(g.Members) > 0 {
		ms := make([]any, len(g.Members))
		for i, m := range g.Members {
			ms[i] = map[string]any{"value": string(m), "type": "User"}
		}
		doc["members"] = ms
	}
	return doc
}

// toGroup reads a Group resource; members must be Users, by id.
func toGroup(doc map[string]any, id string) (lifecycle.HRGroup, error) {
	g := lifecycle.HRGroup{ID: id}
	str := func(name string) (string, error) {
		v, _ := lookup(doc, name)
		if v == nil {
			return "", nil
		}
		s, ok := v.(string)
		if !ok {
			return "", invalidValue(name + ": want a string")
		}
		return strings.TrimSpace(s), nil
	}
	var err error
	if g.DisplayName, err = str("displayName"); err != nil {
		return g, err
	}
	if g.DisplayName == "" {
		return g, invalidValue("displayName is required")
	}
	if g.ExternalID, err = str("externalId"); err != nil {
		return g, err
	}
	ms, _ := lookup(doc, "members")
	for _, x := range asList(ms) {
		m, ok := x.(map[string]any)
		if !ok {
			return g, invalidValue("members: want objects with a value")
		}
		if t, _ := lookup(m, "type"); t != nil && !strings.EqualFold(fmt.Sprint(t), "User") {
			return g, invalidValue("members: only Users can be members (nested groups are not supported)")
		}
		v, _ := lookup(m, "value")
		s, ok := v.(string)
		if !ok || strings.TrimSpace(s) == "" {
			return g, invalidValue("members: each member needs the value (id) of a User")
		}
		g.Members = append(g.Members, connectors.WorkerID(strings.TrimSpace(s)))
	}
	slices.Sort(g.Members)
	g.Members = slices.Compact(g.Members)
	return g, nil
}

func (h *groupHandler) get(r *http.Request, id string) (*lifecycle.HRGroup, error) {
	g, err := h.s.store.Group(r.Context(), id)
	if err != nil {
		if errors.Is(err, lifecycle.ErrNotFound) {
			return nil, notFound("Group", id)
		}
		return nil, h.s.storeError(r, err)
	}
	return g, nil
}

func (h *groupHandler) resource(r *http.Request, g *lifecycle.HRGroup) scim.Resource {
	return resource(r, h.s.groups, g.ID, groupDoc(g), meta(g.CreatedAt, g.UpdatedAt, g.Version))
}

// write stores g and reports its members whose groups changed.
func (h *groupHandler) write(r *http.Request, old *lifecycle.HRGroup, g lifecycle.HRGroup) (scim.Resource, error) {
	ng, err := h.s.store.UpsertGroup(r.Context(), actorOf(r.Context()), g)
	if err != nil {
		return scim.Resource{}, h.s.storeError(r, err)
	}
	h.membersChanged(old, ng)
	return h.resource(r, ng), nil
}

// membersChanged calls OnChange for every worker whose HR groups a group
// write changed: those who joined or left, or all when it was renamed.
func (h *groupHandler) membersChanged(old, g *lifecycle.HRGroup) {
	if h.s.onChange == nil {
		return
	}
	in := map[connectors.WorkerID]int{}
	if old != nil {
		for _, m := range old.Members {
			in[m] |= 1
		}
	}
	if g != nil {
		for _, m := range g.Members {
			in[m] |= 2
		}
	}
	renamed := old == nil || g == nil || old.DisplayName != g.DisplayName
	ids := make([]connectors.WorkerID, 0, len(in))
	for id, bits := range in {
		if renamed || bits != 3 {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		h.s.changed(id, "")
	}
}

func (h *groupHandler) Create(r *http.Request, attrs scim.ResourceAttributes) (scim.Resource, error) {
	g, err := toGroup(docFrom(attrs, h.s.groups), h.s.store.NewGroupID())
	if err != nil {
		return scim.Resource{}, err
	}
	return h.write(r, nil, g)
}

func (h *groupHandler) Get(r *http.Request, id string) (scim.Resource, error) {
	g, err := h.get(r, id)
	if err != nil {
		return scim.Resource{}, err
	}
	return h.resource(r, g), nil
}

func (h *groupHandler) GetAll(r *http.Request, p scim.ListRequestParams) (scim.Page, error) {
	all, err := h.s.store.Groups(r.Context())
	if err != nil {
		return scim.Page{}, h.s.storeError(r, err)
	}
	expr := filterOf(p)
	var gs []*lifecycle.HRGroup
	for _, g := range all {
		if expr != nil {
			doc := groupDoc(g)
			doc["id"], doc["meta"] = g.ID, metaDoc("Group", g.CreatedAt, g.UpdatedAt, g.Version)
			ok, err := matchFilter(expr, doc, h.s.groups)
			if err != nil {
				return scim.Page{}, badFilter(err)
			}
			if !ok {
				continue
			}
		}
		gs = append(gs, g)
	}
	return pageOf(gs, p, func(g *lifecycle.HRGroup) scim.Resource { return h.resource(r, g) }), nil
}

func (h *groupHandler) Replace(r *http.Request, id string, attrs scim.ResourceAttributes) (scim.Resource, error) {
	return h.update(r, id, func(old *lifecycle.HRGroup) (map[string]any, error) {
		doc := docFrom(attrs, h.s.groups)
		if _, ok := lookup(doc, "externalId"); !ok && old.ExternalID != "" {
			doc["externalId"] = old.ExternalID
		}
		return doc, nil
	})
}

func (h *groupHandler) Patch(r *http.Request, id string, ops []scim.PatchOperation) (scim.Resource, error) {
	return h.update(r, id, func(old *lifecycle.HRGroup) (map[string]any, error) {
		doc := groupDoc(old)
		return doc, applyPatch(doc, h.s.groups, ops)
	})
}

// update is PUT and PATCH for groups, as userHandler.update is for users.
func (h *groupHandler) update(r *http.Request, id string, build func(old *lifecycle.HRGroup) (map[string]any, error)) (scim.Resource, error) {
	defer h.s.lock("Group", id)()
	old, err := h.get(r, id)
	if err != nil {
		return scim.Resource{}, err
	}
	if err := checkIfMatch(r, old.Version); err != nil {
		return scim.Resource{}, err
	}
	doc, err := build(old)
	if err != nil {
		return scim.Resource{}, err
	}
	g, err := toGroup(doc, id)
	if err != nil {
		return scim.Resource{}, err
	}
	return h.write(r, old, g)
}

func (h *groupHandler) Delete(r *http.Request, id string) error {
	defer h.s.lock("Group", id)()
	old, err := h.get(r, id)
	if err != nil {
		return err
	}
	if err := checkIfMatch(r, old.Version); err != nil {
		return err
	}
	if err := h.s.store.DeleteGroup(r.Context(), actorOf(r.Context()), id); err != nil {
		return h.s.storeError(r, err)
	}
	h.membersChanged(old, nil)
	return nil
}
