package config

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Sentinel errors, matched with errors.Is.
var (
	// ErrInlineSecret is returned by ResolveSecret for a value that is not a
	// secret reference ("env:NAME" or "file:PATH"). The value itself is never
	// part of the error.
	ErrInlineSecret = errors.New("secret must be a reference env:NAME or file:PATH, not an inline value")
	// ErrSecretMissing is returned by ResolveSecret when the referenced
	// environment variable is unset or empty, or the referenced file is empty.
	ErrSecretMissing = errors.New("secret is missing")
	// ErrNoMatch is returned by PolicyFiles and PolicyTestFiles when a glob
	// matches no file.
	ErrNoMatch = errors.New("pattern matches no file")
)

// Error is one problem in a config file, at a position.
type Error struct {
	// File is the config file's path as given to Load or Parse.
	File string
	// Line and Col are 1-based; Col counts characters (runes), not bytes.
	// Both are 0 when the problem has no position (an empty file).
	Line, Col int
	// Msg says what is wrong, without the position.
	Msg string
	// Snippet is the source line at Line (inline secret values redacted),
	// or "" when there is none.
	Snippet string

	err error // wrapped cause, if any
}

// Error renders "file:line:col: msg" followed, when there is a snippet, by
// the source line and a caret under column Col.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Col)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	if e.Snippet != "" {
		gutter := fmt.Sprintf("%5d | ", e.Line)
		blank := strings.Repeat(" ", len(gutter)-2) + "| "
		b.WriteString("\n")
		b.WriteString(gutter)
		b.WriteString(e.Snippet)
		b.WriteString("\n")
		b.WriteString(blank)
		b.WriteString(caretPad(e.Snippet, e.Col))
		b.WriteString("^")
	}
	return b.String()
}

// Unwrap returns the cause, for errors built with Connector.Errorf and %w.
func (e *Error) Unwrap() error { return e.err }

// caretPad returns the whitespace that puts a caret under column col of
// line, copying tabs so the caret lines up in a terminal.
func caretPad(line string, col int) string {
	var b strings.Builder
	i := 1
	for _, r := range line {
		if i >= col {
			break
		}
		if r == '\t' {
			b.WriteRune('\t')
		} else {
			b.WriteByte(' ')
		}
		i++
	}
	for ; i < col; i++ {
		b.WriteByte(' ')
	}
	return b.String()
}

// Errors is every problem found in one config file, ordered by position.
// Load and Parse return it (never empty) when the file is rejected.
type Errors []*Error

func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

// Unwrap lets errors.As find the first *Error and errors.Is look at every
// cause.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

func (es Errors) sort() {
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].Line != es[j].Line {
			return es[i].Line < es[j].Line
		}
		return es[i].Col < es[j].Col
	})
}

// source is a config file's name and bytes, for building positioned errors.
type source struct {
	file string
	src  []byte
}

func (s *source) errorAt(line, col int, msg string) *Error {
	return &Error{File: s.file, Line: line, Col: col, Msg: msg, Snippet: s.line(line)}
}

// line returns source line n (1-based) without its line ending, with inline
// secret values redacted.
func (s *source) line(n int) string {
	if n <= 0 || s == nil {
		return ""
	}
	rest := string(s.src)
	for i := 1; i < n; i++ {
		j := strings.IndexByte(rest, '\n')
		if j < 0 {
			return ""
		}
		rest = rest[j+1:]
	}
	if j := strings.IndexByte(rest, '\n'); j >= 0 {
		rest = rest[:j]
	}
	return redact(strings.TrimRight(rest, "\r"))
}

// secretKeyValue finds "key: value" pairs whose key looks like it holds a
// credential, in block or flow style.
var secretKeyValue = regexp.MustCompile(`(?i)([a-z0-9_.-]*(?:token|secret|passw(?:or)?d|credential|api_?key|private_?key)[a-z0-9_.-]*["']?[ \t]*:[ \t]+)(\[[^\]]*\]?|\{[^}]*\}?|[^,}\]#\s][^,}\]#]*)`)

// redact replaces the value of a credential-like key by <redacted> unless
// it is a secret reference (env:NAME or file:PATH), so an error never
// echoes a token pasted into the file.
func redact(line string) string {
	return secretKeyValue.ReplaceAllStringFunc(line, func(m string) string {
		sub := secretKeyValue.FindStringSubmatch(m)
		key, val := sub[1], sub[2]
		trimmed := strings.TrimRight(val, " \t")
		v := strings.Trim(trimmed, `"'`)
		if strings.HasPrefix(v, "env:") || strings.HasPrefix(v, "file:") {
			return m
		}
		return key + "<redacted>" + val[len(trimmed):]
	})
}
