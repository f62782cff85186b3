package hr

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/rosterhq/roster/lifecycle"
)

const entURN = EnterpriseSchema

func TestEntraSequenceFake(t *testing.T) {
	h := newHarness(t, newFakeStore())
	runEntra(t, h)
}

func TestOktaSequenceFake(t *testing.T) {
	h := newHarness(t, newFakeStore())
	runOkta(t, h)
}

// entraIDs are the ids an Entra-style replay created.
type entraIDs struct {
	manager, user, other, group string
}

// runEntra replays what Microsoft Entra ID sends, asserting responses
// and stored records; it works over any Store.
func runEntra(t *testing.T, h *harness) entraIDs {
	var ids entraIDs
	q := func(f string) string { return "/Users?filter=" + url.QueryEscape(f) }

	// Connection test: a random userName, expecting an empty list.
	r := h.do("GET", q(`userName eq "7f1d8e0a-5b4c-4d7e-9a1b-2c3d4e5f6a7b"`), "").must(t, http.StatusOK)
	if r.m["totalResults"] != 0.0 || r.m["itemsPerPage"] != 0.0 || r.m["startIndex"] != 1.0 {
		t.Fatalf("connection test paging = %v/%v/%v, want 0/0/1", r.m["totalResults"], r.m["itemsPerPage"], r.m["startIndex"])
	}
	if res, ok := r.m["Resources"].([]any); !ok || len(res) != 0 {
		t.Fatalf("connection test Resources = %v, want []", r.m["Resources"])
	}

	ids.manager = h.createUser("richard@piedpiper.com", `,"name":{"givenName":"Richard","familyName":"Hendricks"},"title":"CEO"`)

	// Create, as Entra does, with both extensions.
	r = h.do("POST", "/Users", fixture(t, "entra/create_user.json", nil)).must(t, http.StatusCreated)
	ids.user = str(r.m, "id")
	if loc := r.header.Get("Location"); loc != h.srv.URL+BasePath+"/Users/"+ids.user {
		t.Errorf("Location %q", loc)
	}
	if got := str(r.m, "meta", "location"); got != h.srv.URL+BasePath+"/Users/"+ids.user {
		t.Errorf("meta.location %q", got)
	}
	if et := r.header.Get("Etag"); et == "" || et != str(r.m, "meta", "version") || !strings.HasPrefix(et, `W/"`) {
		t.Errorf("ETag %q, meta.version %q", et, str(r.m, "meta", "version"))
	}
	if str(r.m, "meta", "created") == "" || str(r.m, "meta", "lastModified") == "" || str(r.m, "meta", "resourceType") != "User" {
		t.Errorf("meta = %v", r.m["meta"])
	}
	w := h.worker(ids.user)
	want := lifecycle.HRRecord{ID: w.ID, UserName: "Gilfoyle@PiedPiper.com", Email: "gilfoyle@piedpiper.com",
		GivenName: "Bertram", FamilyName: "Gilfoyle", DisplayName: "Bertram Gilfoyle", EmployeeNumber: "E1007",
		WorkerType: "employee", Title: "Systems Architect", Department: "Engineering", Division: "Engineering",
		Organization: "Pied Piper Inc.", Team: "infra", CostCenter: "CC-200", Location: "Palo Alto",
		StartDate: "2026-01-05", Active: true, ExternalID: "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
		Custom: map[string]string{"githubUsername": "gilfoyle"}}
	assertRecord(t, w.HR, want)
	if c := h.takeChanges(); len(c) != 2 || c[1].id != w.ID || c[1].tr != lifecycle.Joiner {
		t.Errorf("OnChange calls = %v, want the manager's and a joiner for %s", c, w.ID)
	}

	// Get, and look up as Entra does: userName in another case, e-mail.
	r = h.do("GET", "/Users/"+ids.user, "").must(t, http.StatusOK)
	if str(r.m, "userName") != "Gilfoyle@PiedPiper.com" || str(r.m, "externalId") != want.ExternalID ||
		str(r.m, entURN, "department") != "Engineering" || str(r.m, RosterSchema, "githubUsername") != "gilfoyle" {
		t.Errorf("GET user = %s", r.raw)
	}
	for _, f := range []string{`userName eq "gilfoyle@piedpiper.com"`, `emails[type eq "work"].value eq "GILFOYLE@piedpiper.com"`,
		`externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"`, `emails[type eq 'work'].value eq "gilfoyle@piedpiper.com"`} {
		r = h.do("GET", q(f), "").must(t, http.StatusOK)
		if r.m["totalResults"] != 1.0 || str(r.m["Resources"].([]any)[0].(map[string]any), "id") != ids.user {
			t.Errorf("filter %s: %s", f, r.raw)
		}
	}

	// Mover: department and title (an Add on a set title replaces it).
	r = h.do("PATCH", "/Users/"+ids.user, fixture(t, "entra/patch_mover.json", nil)).must(t, http.StatusOK)
	w = h.worker(ids.user)
	want.Department, want.Title, want.Email, want.FamilyName = "Platform", "Infrastructure Lead", "bertram@piedpiper.com", "Gilfoyle-Smith"
	assertRecord(t, w.HR, want)
	if str(r.m, "title") != "Infrastructure Lead" {
		t.Errorf("PATCH response %s", r.raw)
	}
	if c := h.takeChanges(); len(c) != 1 || c[0].tr != lifecycle.Mover {
		t.Errorf("OnChange after mover = %v", c)
	}

	// Manager as a bare id; returned as {value}.
	r = h.do("PATCH", "/Users/"+ids.user, fixture(t, "entra/patch_manager.json", map[string]string{"manager": ids.manager})).must(t, http.StatusOK)
	if m, ok := field(r.m, entURN, "manager").(map[string]any); !ok || m["value"] != ids.manager {
		t.Errorf("manager = %v, want {value: %s}", field(r.m, entURN, "manager"), ids.manager)
	}
	want.Manager = ids.manager
	assertRecord(t, h.worker(ids.user).HR, want)

	// Leaver: active "False" as a string. The user stays readable.
	h.do("PATCH", "/Users/"+ids.user, fixture(t, "entra/patch_leaver.json", nil)).must(t, http.StatusOK)
	want.Active = false
	assertRecord(t, h.worker(ids.user).HR, want)
	if c := h.takeChanges(); len(c) != 2 || c[1].tr != lifecycle.Leaver {
		t.Errorf("OnChange after leaver = %v", c)
	}
	r = h.do("GET", "/Users/"+ids.user, "").must(t, http.StatusOK)
	if r.m["active"] != false {
		t.Errorf("inactive user: active = %v", r.m["active"])
	}

	// Rehire: "True".
	h.do("PATCH", "/Users/"+ids.user, fixture(t, "entra/patch_rehire.json", nil)).must(t, http.StatusOK)
	want.Active = true
	assertRecord(t, h.worker(ids.user).HR, want)
	if c := h.takeChanges(); len(c) != 1 || c[0].tr != lifecycle.Rehire {
		t.Errorf("OnChange after rehire = %v", c)
	}

	// The older path-less form: dotted keys, URN keys, bare manager, "True".
	h.do("PATCH", "/Users/"+ids.user, fixture(t, "entra/patch_pathless.json", map[string]string{"manager": ids.manager})).must(t, http.StatusOK)
	want.GivenName, want.DisplayName, want.Division, want.Email = "Bert", "Bert Gilfoyle", "Infrastructure", "bert@piedpiper.com"
	assertRecord(t, h.worker(ids.user).HR, want)

	// PUT replaces every mapped attribute; what it omits is cleared,
	// except active and externalId.
	h.do("PUT", "/Users/"+ids.user, fixture(t, "entra/put_user.json", map[string]string{"manager": ids.manager})).must(t, http.StatusOK)
	want = lifecycle.HRRecord{ID: w.ID, UserName: "gilfoyle@piedpiper.com", Email: "gilfoyle@piedpiper.com",
		GivenName: "Bertram", FamilyName: "Gilfoyle", Title: "Principal Architect", Department: "Engineering",
		Division: "Engineering", Manager: ids.manager, Active: true, ExternalID: "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"}
	assertRecord(t, h.worker(ids.user).HR, want)

	// Groups: create, look up by displayName without members, add two,
	// remove one (Entra's Remove with a value array).
	ids.other = h.createUser("jared@piedpiper.com", "")
	r = h.do("POST", "/Groups", fixture(t, "entra/create_group.json", nil)).must(t, http.StatusCreated)
	ids.group = str(r.m, "id")
	r = h.do("GET", "/Groups?excludedAttributes=members&filter="+url.QueryEscape(`displayName eq "oncall rotation"`), "").must(t, http.StatusOK)
	if r.m["totalResults"] != 1.0 {
		t.Fatalf("group lookup: %s", r.raw)
	}
	h.takeChanges()
	vars := map[string]string{"a": ids.user, "b": ids.other}
	h.do("PATCH", "/Groups/"+ids.group, fixture(t, "entra/patch_group_add.json", vars)).must(t, http.StatusOK)
	assertGroups(t, h, ids.user, "Oncall Rotation")
	assertGroups(t, h, ids.other, "Oncall Rotation")
	assertMembers(t, h, ids.group, ids.user, ids.other)
	if c := h.takeChanges(); len(c) != 2 {
		t.Errorf("OnChange after adding 2 members = %v", c)
	}
	h.do("PATCH", "/Groups/"+ids.group, fixture(t, "entra/patch_group_remove.json", vars)).must(t, http.StatusOK)
	assertMembers(t, h, ids.group, ids.other)
	assertGroups(t, h, ids.user)
	assertGroups(t, h, ids.other, "Oncall Rotation")
	if c := h.takeChanges(); len(c) != 1 || string(c[0].id) != ids.user {
		t.Errorf("OnChange after removing 1 member = %v", c)
	}
	h.do("PATCH", "/Groups/"+ids.group, fixture(t, "entra/patch_group_rename.json", nil)).must(t, http.StatusOK)
	assertGroups(t, h, ids.other, "Oncall")
	r = h.do("GET", "/Groups/"+ids.group+"?excludedAttributes=members", "").must(t, http.StatusOK)
	if _, has := r.m["members"]; has || str(r.m, "displayName") != "Oncall" {
		t.Errorf("excludedAttributes=members: %s", r.raw)
	}
	if r = h.do("GET", "/Groups/"+ids.group, "").must(t, http.StatusOK); len(field(r.m, "members").([]any)) != 1 {
		t.Errorf("group members: %s", r.raw)
	}

	// DELETE: a leaver, then 404 everywhere; the userName is free again.
	h.do("DELETE", "/Users/"+ids.user, "").must(t, http.StatusNoContent)
	if w := h.worker(ids.user); !w.Deleted {
		t.Errorf("deleted worker: Deleted = false")
	}
	h.do("GET", "/Users/"+ids.user, "").wantError(t, http.StatusNotFound, "")
	h.do("PATCH", "/Users/"+ids.user, fixture(t, "entra/patch_leaver.json", nil)).wantError(t, http.StatusNotFound, "")
	h.do("PUT", "/Users/"+ids.user, fixture(t, "entra/put_user.json", map[string]string{"manager": ids.manager})).wantError(t, http.StatusNotFound, "")
	h.do("DELETE", "/Users/"+ids.user, "").wantError(t, http.StatusNotFound, "")
	if r = h.do("GET", q(`userName eq "gilfoyle@piedpiper.com"`), "").must(t, http.StatusOK); r.m["totalResults"] != 0.0 {
		t.Errorf("deleted user still listed: %s", r.raw)
	}
	again := h.createUser("GILFOYLE@piedpiper.com", "")
	if again == ids.user {
		t.Errorf("a new POST reused the deleted worker's id")
	}
	return ids
}

// runOkta replays what Okta sends.
func runOkta(t *testing.T, h *harness) {
	// Okta's existence check, with its paging parameters.
	r := h.do("GET", "/Users?filter="+url.QueryEscape(`userName eq "dinesh@piedpiper.com"`)+"&startIndex=1&count=100", "").must(t, http.StatusOK)
	if r.m["totalResults"] != 0.0 {
		t.Fatalf("lookup: %s", r.raw)
	}
	r = h.do("POST", "/Users", fixture(t, "okta/create_user.json", nil)).must(t, http.StatusCreated)
	id := str(r.m, "id")
	if _, has := r.m["password"]; has || strings.Contains(string(r.raw), "1mz050nq") {
		t.Errorf("the password came back: %s", r.raw)
	}
	w := h.worker(id)
	want := lifecycle.HRRecord{ID: w.ID, UserName: "dinesh@piedpiper.com", Email: "dinesh@piedpiper.com",
		GivenName: "Dinesh", FamilyName: "Chugtai", DisplayName: "Dinesh Chugtai", Active: true, ExternalID: "00ujl29u0le5T6Aj10h7"}
	assertRecord(t, w.HR, want)
	h.do("GET", "/Users/"+id, "").must(t, http.StatusOK)

	// PUT without externalId keeps it.
	h.do("PUT", "/Users/"+id, fixture(t, "okta/put_user.json", map[string]string{"id": id})).must(t, http.StatusOK)
	want.Title, want.Department, want.Division, want.DisplayName = "Senior Engineer", "Engineering", "Engineering", ""
	assertRecord(t, h.worker(id).HR, want)

	// Deactivate and reactivate with path-less replaces.
	h.do("PATCH", "/Users/"+id, fixture(t, "okta/patch_deactivate.json", nil)).must(t, http.StatusOK)
	want.Active = false
	assertRecord(t, h.worker(id).HR, want)
	h.do("PATCH", "/Users/"+id, fixture(t, "okta/patch_activate.json", nil)).must(t, http.StatusOK)
	want.Active = true
	assertRecord(t, h.worker(id).HR, want)

	// Groups: create empty, add two and remove one by value path, replace
	// the list, rename path-less (with the id Okta includes).
	other := h.createUser("gavin@hooli.com", "")
	r = h.do("POST", "/Groups", fixture(t, "okta/create_group.json", nil)).must(t, http.StatusCreated)
	gid := str(r.m, "id")
	vars := map[string]string{"a": id, "b": other, "id": gid}
	h.do("PATCH", "/Groups/"+gid, fixture(t, "okta/patch_group_membership.json", vars)).must(t, http.StatusOK)
	assertMembers(t, h, gid, other)
	assertGroups(t, h, id)
	assertGroups(t, h, other, "Engineering")
	h.do("PATCH", "/Groups/"+gid, fixture(t, "okta/patch_group_replace.json", vars)).must(t, http.StatusOK)
	assertMembers(t, h, gid, id, other)
	h.do("PATCH", "/Groups/"+gid, fixture(t, "okta/patch_group_name.json", vars)).must(t, http.StatusOK)
	assertGroups(t, h, id, "Engineering (all)")
	r = h.do("GET", "/Groups/"+gid, "").must(t, http.StatusOK)
	if str(r.m, "displayName") != "Engineering (all)" || str(r.m, "id") != gid {
		t.Errorf("renamed group: %s", r.raw)
	}
	h.do("DELETE", "/Groups/"+gid, "").must(t, http.StatusNoContent)
	assertGroups(t, h, id)
	h.do("GET", "/Groups/"+gid, "").wantError(t, http.StatusNotFound, "")
}

func TestOneLoginLegacyTemplate(t *testing.T) {
	h := newHarness(t, newFakeStore())
	r := h.do("POST", "/Users", fixture(t, "onelogin/create_user.json", nil)).must(t, http.StatusCreated)
	w := h.worker(str(r.m, "id"))
	assertRecord(t, w.HR, lifecycle.HRRecord{ID: w.ID, UserName: "monica@piedpiper.com", Email: "monica@piedpiper.com",
		GivenName: "Monica", FamilyName: "Hall", Title: "Partner", Department: "Finance", Active: true})
}

func TestPaginationStable(t *testing.T) {
	h := newHarness(t, newFakeStore())
	var ids []string
	for _, n := range []string{"e", "b", "d", "a", "c"} {
		ids = append(ids, h.createUser(n+"@piedpiper.com", ""))
	}
	slices.Sort(ids)
	var got []string
	for start := 1; start <= 6; start += 2 {
		r := h.do("GET", "/Users?count=2&startIndex="+itoa(start), "").must(t, http.StatusOK)
		res, _ := r.m["Resources"].([]any)
		if r.m["totalResults"] != 5.0 || r.m["startIndex"] != float64(start) || r.m["itemsPerPage"] != float64(len(res)) {
			t.Errorf("page %d: %v/%v/%v", start, r.m["totalResults"], r.m["startIndex"], r.m["itemsPerPage"])
		}
		for _, x := range res {
			got = append(got, str(x.(map[string]any), "id"))
		}
	}
	if !slices.Equal(got, ids) {
		t.Errorf("pages = %v, want %v", got, ids)
	}
	r := h.do("GET", "/Users?count=0", "").must(t, http.StatusOK)
	if r.m["totalResults"] != 5.0 || r.m["itemsPerPage"] != 0.0 {
		t.Errorf("count=0: %s", r.raw)
	}
	r = h.do("GET", "/Users?filter="+url.QueryEscape(`userName sw "a" or userName sw "B"`), "").must(t, http.StatusOK)
	if r.m["totalResults"] != 2.0 {
		t.Errorf("or filter: %s", r.raw)
	}
	r = h.do("GET", "/Users?filter="+url.QueryEscape(`userName ew "@piedpiper.com" and not (userName sw "a")`), "").must(t, http.StatusOK)
	if r.m["totalResults"] != 4.0 {
		t.Errorf("and/not filter: %s", r.raw)
	}
	for f, want := range map[string]float64{`meta.lastModified gt "2000-01-01T00:00:00Z"`: 5, `meta.created lt "2000-01-01T00:00:00Z"`: 0,
		`meta.resourceType eq "User"`: 5, `id eq "` + ids[2] + `"`: 1, `id eq "` + strings.ToUpper(ids[2]) + `"`: 0} {
		r = h.do("GET", "/Users?filter="+url.QueryEscape(f), "").must(t, http.StatusOK)
		if r.m["totalResults"] != want {
			t.Errorf("%s: %v results, want %v", f, r.m["totalResults"], want)
		}
	}
}

func assertRecord(t *testing.T, got, want lifecycle.HRRecord) {
	t.Helper()
	want.Groups = got.Groups // set by group membership, checked apart
	if len(want.Custom) == 0 && len(got.Custom) == 0 {
		want.Custom = got.Custom
	}
	if d := lifecycle.ChangedFields(&got, &want); len(d) > 0 || got.ID != want.ID {
		t.Fatalf("stored record differs in %v:\n got %+v\nwant %+v", d, got, want)
	}
}

func assertGroups(t *testing.T, h *harness, id string, want ...string) {
	t.Helper()
	if got := h.worker(id).HR.Groups; !slices.Equal(got, want) && (len(got) > 0 || len(want) > 0) {
		t.Errorf("worker %s groups = %v, want %v", id, got, want)
	}
}

func assertMembers(t *testing.T, h *harness, gid string, want ...string) {
	t.Helper()
	g, err := h.store.Group(t.Context(), gid)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range g.Members {
		got = append(got, string(m))
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("group %s members = %v, want %v", gid, got, want)
	}
}
