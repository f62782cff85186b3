package lifecycle

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/rosterhq/roster/connectors"
)

// Date is a calendar date in HR's sense ("2027-01-04"), without a time or
// zone: a start date begins at midnight in the company timezone, an end
// date is the last working day. The zero Date means "not set".
type Date string

// ParseDate checks s is YYYY-MM-DD (or empty).
func ParseDate(s string) (Date, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	if _, err := time.Parse(time.DateOnly, s); err != nil {
		return "", fmt.Errorf("date %q: want YYYY-MM-DD", s)
	}
	return Date(s), nil
}

// IsZero reports whether the date is unset.
func (d Date) IsZero() bool { return d == "" }

// Start returns midnight at the start of d in loc (zero time if unset).
func (d Date) Start(loc *time.Location) time.Time {
	if d == "" {
		return time.Time{}
	}
	t, err := time.ParseInLocation(time.DateOnly, string(d), loc)
	if err != nil {
		return time.Time{}
	}
	return t
}

// Status of a worker.
type Status string

// Worker statuses.
const (
	// Pending: hired, start date in the future; no access yet.
	Pending Status = "pending"
	// Active: gets the access their roles grant.
	Active Status = "active"
	// Terminated: left (active=false, contract ended, or deleted in HR);
	// accounts suspended, grants revoked, accounts deleted after retention.
	Terminated Status = "terminated"
)

// Transition names, also used as plan reasons.
const (
	Joiner           = "joiner"
	Mover            = "mover"
	Leaver           = "leaver"
	Rehire           = "rehire"
	PolicyChange     = "policy_change"
	ExceptionExpired = "exception_expired"
	Drift            = "drift"
)

// MaxKeyLength is the longest id, userName, email or externalId accepted.
const MaxKeyLength = 1024

// HRRecord is one worker as HR describes them: what SCIM and CSV import
// turn their input into.
type HRRecord struct {
	ID             connectors.WorkerID `json:"id"`
	UserName       string              `json:"userName,omitempty"`
	Email          string              `json:"email,omitempty"`
	GivenName      string              `json:"givenName,omitempty"`
	FamilyName     string              `json:"familyName,omitempty"`
	DisplayName    string              `json:"displayName,omitempty"`
	EmployeeNumber string              `json:"employeeNumber,omitempty"`
	WorkerType     string              `json:"workerType,omitempty"`
	Title          string              `json:"title,omitempty"`
	Department     string              `json:"department,omitempty"`
	Division       string              `json:"division,omitempty"`
	Organization   string              `json:"organization,omitempty"`
	Team           string              `json:"team,omitempty"`
	CostCenter     string              `json:"costCenter,omitempty"`
	Location       string              `json:"location,omitempty"`
	// Manager is the manager's worker id.
	Manager   string `json:"manager,omitempty"`
	StartDate Date   `json:"startDate,omitempty"`
	EndDate   Date   `json:"endDate,omitempty"`
	Active    bool   `json:"active"`
	// Custom holds every other attribute (githubUsername, …).
	Custom map[string]string `json:"custom,omitempty"`
	// ExternalID is the HR system's own id for the worker (SCIM
	// externalId).
	ExternalID string `json:"externalId,omitempty"`
	// Groups are the display names of the HR groups (teams, cost
	// centres) the worker is a member of, sorted. The engine sets them from
	// group membership (UpsertGroup); a record written by UpsertHR keeps
	// the stored value.
	Groups []string `json:"groups,omitempty"`
}

// Validate checks the fields the engine relies on.
func (r *HRRecord) Validate() error {
	if strings.TrimSpace(string(r.ID)) == "" {
		return fmt.Errorf("%w: id is empty", ErrInvalidRecord)
	}
	for _, d := range []struct {
		name string
		v    Date
	}{{"startDate", r.StartDate}, {"endDate", r.EndDate}} {
		if _, err := ParseDate(string(d.v)); err != nil {
			return fmt.Errorf("%w: worker %s: %s: %w", ErrInvalidRecord, r.ID, d.name, err)
		}
	}
	// Keys of the store and its indexes: keep them well under bbolt's
	// key size limit, so a bad record is refused, not a storage error.
	for _, f := range []struct{ name, v string }{
		{"id", string(r.ID)}, {"userName", r.UserName}, {"email", r.Email}, {"externalId", r.ExternalID},
	} {
		if len(f.v) > MaxKeyLength {
			return fmt.Errorf("%w: worker %.64s: %s is %d bytes long, at most %d are allowed", ErrInvalidRecord, r.ID, f.name, len(f.v), MaxKeyLength)
		}
	}
	switch r.WorkerType {
	case "", "employee", "contractor", "vendor", "intern":
	default:
		return fmt.Errorf("%w: worker %s: workerType %q: want employee, contractor, vendor or intern", ErrInvalidRecord, r.ID, r.WorkerType)
	}
	return nil
}

// orgFields are the attributes whose change makes a worker a mover.
func (r *HRRecord) orgFields() [11]string {
	return [11]string{r.WorkerType, r.Title, r.Department, r.Division, r.Organization, r.Team, r.CostCenter, r.Location, r.Manager,
		customKey(r.Custom), strings.Join(r.Groups, "\x00")}
}

func customKey(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(m[k])
		b.WriteByte(0)
	}
	return b.String()
}

// ChangedFields lists the names of the fields that differ between a and b.
func ChangedFields(a, b *HRRecord) []string {
	var out []string
	add := func(name string, x, y string) {
		if x != y {
			out = append(out, name)
		}
	}
	add("userName", a.UserName, b.UserName)
	add("email", a.Email, b.Email)
	add("givenName", a.GivenName, b.GivenName)
	add("familyName", a.FamilyName, b.FamilyName)
	add("displayName", a.DisplayName, b.DisplayName)
	add("employeeNumber", a.EmployeeNumber, b.EmployeeNumber)
	add("workerType", a.WorkerType, b.WorkerType)
	add("title", a.Title, b.Title)
	add("department", a.Department, b.Department)
	add("division", a.Division, b.Division)
	add("organization", a.Organization, b.Organization)
	add("team", a.Team, b.Team)
	add("costCenter", a.CostCenter, b.CostCenter)
	add("location", a.Location, b.Location)
	add("manager", a.Manager, b.Manager)
	add("startDate", string(a.StartDate), string(b.StartDate))
	add("endDate", string(a.EndDate), string(b.EndDate))
	if a.Active != b.Active {
		out = append(out, "active")
	}
	if !maps.Equal(a.Custom, b.Custom) {
		out = append(out, "custom")
	}
	add("externalId", a.ExternalID, b.ExternalID)
	if !slices.Equal(a.Groups, b.Groups) {
		out = append(out, "groups")
	}
	return out
}

// Worker is one identity in the store.
type Worker struct {
	ID      connectors.WorkerID `json:"id"`
	HR      HRRecord            `json:"hr"`
	Status  Status              `json:"status"`
	Version uint64              `json:"version"`
	// Deleted is true once HR deleted the record: the worker is a leaver
	// and stays in the store for history.
	Deleted bool `json:"deleted,omitempty"`
	// Transition is the last transition not yet fully carried out
	// (joiner, mover, leaver, rehire); it labels the plan's actions and is
	// cleared when a run completes every action for the worker.
	Transition   string    `json:"transition,omitempty"`
	TransitionAt time.Time `json:"transitionAt,omitzero"`
	MovedAt      time.Time `json:"movedAt,omitzero"`
	ActivatedAt  time.Time `json:"activatedAt,omitzero"`
	TerminatedAt time.Time `json:"terminatedAt,omitzero"`
	CreatedAt    time.Time `json:"createdAt"`
	UpdatedAt    time.Time `json:"updatedAt"`
}

// EffectiveStatus is the status the worker's HR record implies at now in
// loc, whatever is stored: the scheduler writes it, the planner reads it.
func EffectiveStatus(r *HRRecord, deleted bool, now time.Time, loc *time.Location) Status {
	if deleted || !r.Active {
		return Terminated
	}
	now = now.In(loc)
	if !r.EndDate.IsZero() && !now.Before(r.EndDate.Start(loc).AddDate(0, 0, 1)) {
		return Terminated
	}
	if !r.StartDate.IsZero() && now.Before(r.StartDate.Start(loc)) {
		return Pending
	}
	return Active
}

// transition computes the new stored state of a worker after its record or
// the clock changed. old is nil for a new worker. It returns the
// transition that happened ("" for none).
func transition(old *Worker, rec *HRRecord, deleted bool, now time.Time, loc *time.Location) (*Worker, string) {
	st := EffectiveStatus(rec, deleted, now, loc)
	var w Worker
	if old != nil {
		w = *old
	} else {
		w = Worker{ID: rec.ID, CreatedAt: now}
	}
	prev := w
	w.HR = *rec
	w.Deleted = deleted
	w.Status = st
	w.Version++
	w.UpdatedAt = now

	var tr string
	switch {
	case old == nil:
		if st != Terminated {
			tr = Joiner
		}
	case prev.Status != Terminated && st == Terminated:
		tr = Leaver
	case prev.Status == Terminated && st != Terminated:
		tr = Rehire
	case prev.Status == Pending && st == Active:
		tr = Joiner
	case prev.Status == Active && st == Active && prev.HR.orgFields() != rec.orgFields():
		tr = Mover
	}
	if tr != "" {
		// A joiner who has not been fully provisioned yet and moves is
		// still a joiner, and a rehire who waited for a future start date
		// and starts is still a rehire (the plan restores their accounts);
		// everything else records the new transition.
		if !(tr == Mover && prev.Transition == Joiner) && !(tr == Joiner && prev.Transition == Rehire) {
			w.Transition = tr
			w.TransitionAt = now
		}
	}
	switch tr {
	case Mover:
		w.MovedAt = now
	case Leaver:
		w.TerminatedAt = now
	case Rehire:
		w.TerminatedAt = time.Time{}
		w.MovedAt = time.Time{}
	}
	if st == Active && prev.Status != Active {
		w.ActivatedAt = now
	}
	if st == Terminated && w.TerminatedAt.IsZero() {
		w.TerminatedAt = now
	}
	return &w, tr
}
