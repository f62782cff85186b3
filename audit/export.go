package audit

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
)

// Export formats.
const (
	FormatJSONL = "jsonl" // JSON Lines: one record per line
	FormatCSV   = "csv"   // CSV with a header row, columns CSVHeader()
)

// CSVHeader returns the columns of a CSV export, in order. details is the
// JSON of Record.Details ("" when empty); time is in TimeFormat; prev_hash
// and hash are hex.
func CSVHeader() []string {
	return []string{
		"seq", "time", "type", "actor", "worker", "app", "action", "entitlement",
		"reason", "outcome", "plan_id", "action_id", "message", "details",
		"prev_hash", "hash",
	}
}

// Export writes the records that pass f to w in format (FormatJSONL or
// FormatCSV) and returns how many it wrote. Unknown formats fail with
// ErrFormat before anything is written; otherwise Export fails as Query
// does, or with w's error.
//
// A JSON Lines row is the stored body, byte for byte, with two fields
// spliced in before its closing brace:
//
//	{"seq":7,"time":"…","type":"…",…,"prevHash":"<64 hex>","hash":"<64 hex>"}
//
// so an auditor can re-verify each record offline: strip the newline, cut the last 153 bytes
// (`,"prevHash":"…","hash":"…"}`), append "}", and check that SHA-256 of
// (seq as 8 bytes big-endian || prevHash || that body) equals hash, and,
// for consecutive seqs, that each prevHash equals the hash before it.
//
// CSV rows hold the same facts in the columns of CSVHeader(). Values are
// written verbatim, as evidence must be; a spreadsheet may treat a value
// starting with "=", "+", "-" or "@" as a formula, so open the file as
// text or use the JSON Lines export for anything automated.
func (l *Log) Export(ctx context.Context, w io.Writer, format string, f Filter) (int, error) {
	var write func(*entry) error
	var flush func() error
	switch format {
	case FormatJSONL:
		bw := bufio.NewWriter(w)
		write = func(e *entry) error { return writeJSONLine(bw, e) }
		flush = bw.Flush
	case FormatCSV:
		cw := csv.NewWriter(w)
		if err := cw.Write(CSVHeader()); err != nil {
			return 0, fmt.Errorf("audit: export csv: %w", err)
		}
		write = func(e *entry) error { return writeCSVRow(cw, e) }
		flush = func() error { cw.Flush(); return cw.Error() }
	default:
		return 0, fmt.Errorf("%w %q (want %q or %q)", ErrFormat, format, FormatJSONL, FormatCSV)
	}
	n := 0
	err := l.scan(ctx, f, true, func(e *entry) error {
		if err := write(e); err != nil {
			return fmt.Errorf("audit: export %s: record %d: %w", format, e.Seq, err)
		}
		n++
		return nil
	})
	if ferr := flush(); err == nil && ferr != nil {
		err = fmt.Errorf("audit: export %s: %w", format, ferr)
	}
	return n, err
}

// jsonlSuffixLen is the length of `,"prevHash":"<64>","hash":"<64>"}`.
const jsonlSuffixLen = len(`,"prevHash":"","hash":""}`) + 4*hashLen

func writeJSONLine(w *bufio.Writer, e *entry) error {
	body := e.body
	if len(body) < 2 || body[len(body)-1] != '}' {
		return fmt.Errorf("%w: record %d: body is not a JSON object", ErrCorrupt, e.Seq)
	}
	line := make([]byte, 0, len(body)-1+jsonlSuffixLen+1)
	line = append(line, body[:len(body)-1]...)
	line = append(line, `,"prevHash":"`...)
	line = hex.AppendEncode(line, e.prevHash[:])
	line = append(line, `","hash":"`...)
	line = hex.AppendEncode(line, e.hash[:])
	line = append(line, "\"}\n"...)
	_, err := w.Write(line)
	return err
}

func writeCSVRow(w *csv.Writer, e *entry) error {
	details := ""
	if len(e.Details) > 0 {
		b, err := json.Marshal(e.Details)
		if err != nil {
			return err
		}
		details = string(b)
	}
	return w.Write([]string{
		strconv.FormatUint(e.Seq, 10),
		e.Time.UTC().Format(TimeFormat),
		e.Type, e.Actor, e.Worker, e.App, e.Action, e.Entitlement,
		e.Reason, e.Outcome, e.PlanID, e.ActionID, e.Message,
		details,
		hex.EncodeToString(e.prevHash[:]),
		hex.EncodeToString(e.hash[:]),
	})
}
