package hr

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/rosterhq/roster/connectors"
	"github.com/rosterhq/roster/lifecycle"
)

// Columns are the CSV columns ReadCSV knows. Any other column becomes a
// custom attribute under its header name (empty values are left out).
// Only "id" is required.
var Columns = []string{"id", "userName", "email", "givenName", "familyName", "displayName", "employeeNumber",
	"workerType", "title", "department", "division", "organization", "team", "costCenter", "location",
	"manager", "startDate", "endDate", "active"}

// RowError is a problem with one CSV row.
type RowError struct {
	File   string
	Line   int
	Column string
	Err    error
}

func (e *RowError) Error() string {
	if e.Column != "" {
		return fmt.Sprintf("%s:%d: column %s: %v", e.File, e.Line, e.Column, e.Err)
	}
	return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
}

func (e *RowError) Unwrap() error { return e.Err }

// File is a parsed HR CSV file.
type File struct {
	Name string
	// Columns is the header row as written.
	Columns []string
	Records []lifecycle.HRRecord
}

// ReadCSV reads HR records from r (name is for error messages). The first
// row is the header. Every problem is reported (joined), and any problem
// rejects the whole file.
func ReadCSV(name string, r io.Reader) (*File, error) {
	cr := csv.NewReader(r)
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: read header: %w", name, err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		if _, dup := col[h]; dup {
			return nil, fmt.Errorf("%s:1: column %q appears twice", name, h)
		}
		col[h] = i
		header[i] = h
	}
	if _, ok := col["id"]; !ok {
		return nil, fmt.Errorf("%s:1: no \"id\" column (columns: %s)", name, strings.Join(header, ","))
	}
	known := map[string]bool{}
	for _, c := range Columns {
		known[c] = true
	}
	var (
		out  []lifecycle.HRRecord
		errs []error
		seen = map[connectors.WorkerID]int{}
	)
	for {
		row, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			if _, ok := err.(*csv.ParseError); ok {
				continue
			}
			break
		}
		// Only after a successful Read: FieldPos panics when the row
		// failed to parse (a bare quote in its first field, say).
		line, _ := cr.FieldPos(0)
		get := func(c string) string {
			if i, ok := col[c]; ok && i < len(row) {
				return strings.TrimSpace(row[i])
			}
			return ""
		}
		rec := lifecycle.HRRecord{
			ID: connectors.WorkerID(get("id")), UserName: get("userName"), Email: get("email"),
			GivenName: get("givenName"), FamilyName: get("familyName"), DisplayName: get("displayName"),
			EmployeeNumber: get("employeeNumber"), WorkerType: get("workerType"), Title: get("title"),
			Department: get("department"), Division: get("division"), Organization: get("organization"),
			Team: get("team"), CostCenter: get("costCenter"), Location: get("location"), Manager: get("manager"),
			Active: true,
		}
		rowErr := func(column string, err error) {
			errs = append(errs, &RowError{File: name, Line: line, Column: column, Err: err})
		}
		if rec.ID == "" {
			rowErr("id", errors.New("empty"))
			continue
		}
		if prev, dup := seen[rec.ID]; dup {
			rowErr("id", fmt.Errorf("%s already on line %d", rec.ID, prev))
			continue
		}
		seen[rec.ID] = line
		for _, d := range []struct {
			c   string
			dst *lifecycle.Date
		}{{"startDate", &rec.StartDate}, {"endDate", &rec.EndDate}} {
			v, err := lifecycle.ParseDate(get(d.c))
			if err != nil {
				rowErr(d.c, err)
			}
			*d.dst = v
		}
		if v := get("active"); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				rowErr("active", fmt.Errorf("%q: want true or false", v))
			}
			rec.Active = b
		}
		for i, h := range header {
			if known[h] || h == "" || i >= len(row) || strings.TrimSpace(row[i]) == "" {
				continue
			}
			if rec.Custom == nil {
				rec.Custom = map[string]string{}
			}
			rec.Custom[h] = strings.TrimSpace(row[i])
		}
		if err := rec.Validate(); err != nil {
			rowErr("", err)
			continue
		}
		out = append(out, rec)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &File{Name: name, Columns: header, Records: out}, nil
}

// ImportResult counts what an import did.
type ImportResult struct {
	Records     int            `json:"records"`
	Unchanged   int            `json:"unchanged"`
	Transitions map[string]int `json:"transitions"`
}

// Import stores the file's records through the engine, each audited with
// actor. It only upserts: workers missing from the file are left as they
// are. Columns missing from the file keep their stored values (a file with
// only id and title changes titles, nothing else), and so do custom
// attributes that are not columns of the file.
func Import(ctx context.Context, e *lifecycle.Engine, actor string, f *File) (*ImportResult, error) {
	present := map[string]bool{}
	for _, c := range f.Columns {
		present[c] = true
	}
	res := &ImportResult{Transitions: map[string]int{}}
	for _, r := range f.Records {
		before, err := e.Worker(ctx, r.ID)
		if err != nil && !errors.Is(err, lifecycle.ErrNotFound) {
			return res, err
		}
		if before != nil {
			keepAbsent(&r, &before.HR, present)
		}
		w, tr, err := e.UpsertHR(ctx, actor, r)
		if err != nil {
			return res, err
		}
		res.Records++
		if before != nil && before.Version == w.Version {
			res.Unchanged++
		}
		if tr != "" {
			res.Transitions[tr]++
		}
	}
	return res, nil
}

// keepAbsent copies into r the stored values of the columns the file
// does not have.
func keepAbsent(r, stored *lifecycle.HRRecord, present map[string]bool) {
	strs := []struct {
		col      string
		dst, src *string
	}{
		{"userName", &r.UserName, &stored.UserName}, {"email", &r.Email, &stored.Email},
		{"givenName", &r.GivenName, &stored.GivenName}, {"familyName", &r.FamilyName, &stored.FamilyName},
		{"displayName", &r.DisplayName, &stored.DisplayName}, {"employeeNumber", &r.EmployeeNumber, &stored.EmployeeNumber},
		{"workerType", &r.WorkerType, &stored.WorkerType}, {"title", &r.Title, &stored.Title},
		{"department", &r.Department, &stored.Department}, {"division", &r.Division, &stored.Division},
		{"organization", &r.Organization, &stored.Organization}, {"team", &r.Team, &stored.Team},
		{"costCenter", &r.CostCenter, &stored.CostCenter}, {"location", &r.Location, &stored.Location},
		{"manager", &r.Manager, &stored.Manager},
	}
	for _, f := range strs {
		if !present[f.col] {
			*f.dst = *f.src
		}
	}
	if !present["startDate"] {
		r.StartDate = stored.StartDate
	}
	if !present["endDate"] {
		r.EndDate = stored.EndDate
	}
	if !present["active"] {
		r.Active = stored.Active
	}
	for k, v := range stored.Custom {
		if present[k] {
			continue
		}
		if r.Custom == nil {
			r.Custom = map[string]string{}
		}
		r.Custom[k] = v
	}
}
