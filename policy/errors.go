package policy

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// ErrNoFiles is returned (wrapped) by Expand when a pattern matches no file
// and by Load when it is given no file at all: an empty policy set would
// revoke everybody's access, so it is never a silent success.
var ErrNoFiles = errors.New("no policy files")

// Problem is one thing wrong in a policy or policy-test file. Line and Col
// are 1-based; both are 0 when the problem concerns the file as a whole
// (it cannot be read, say). Source is the offending source line, without
// its line break.
type Problem struct {
	File   string
	Line   int
	Col    int
	Msg    string
	Source string
}

// String renders the problem as "file:line:col: msg", followed, when the
// source line is known, by the line and a caret under the column.
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", p.Line, p.Col)
	}
	b.WriteString(": ")
	b.WriteString(p.Msg)
	if p.Line > 0 && strings.TrimSpace(p.Source) != "" {
		b.WriteString("\n    ")
		b.WriteString(p.Source)
		b.WriteString("\n    ")
		// Keep tabs so the caret lines up under tab-indented source.
		n := 0
		for _, r := range p.Source {
			if n >= p.Col-1 {
				break
			}
			if r == '\t' {
				b.WriteByte('\t')
			} else {
				b.WriteByte(' ')
			}
			n++
		}
		b.WriteByte('^')
	}
	return b.String()
}

// LoadError is returned by Load, LoadBytes and LoadTests when anything is
// wrong: it lists every problem found, in file, line and column order. A
// LoadError means nothing was loaded.
type LoadError struct {
	Problems []Problem
}

// Error renders every problem, one after the other, each as
// "file:line:col: msg" plus the source line and a caret.
func (e *LoadError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return strings.Join(parts, "\n")
}

// problems collects Problems while a set of files is read.
type problems struct {
	list []Problem
}

func (ps *problems) add(src *source, line, col int, format string, args ...any) {
	p := Problem{Line: line, Col: col, Msg: fmt.Sprintf(format, args...)}
	if src != nil {
		p.File = src.name
		p.Source = src.line(line)
	}
	ps.list = append(ps.list, p)
}

func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	list := append([]Problem(nil), ps.list...)
	sort.SliceStable(list, func(i, j int) bool {
		a, b := list[i], list[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	return &LoadError{Problems: list}
}

// source is one file's name and raw text, for problem messages.
type source struct {
	name  string
	data  []byte
	lines []string
}

func newSource(name string, data []byte) *source {
	return &source{name: name, data: data, lines: strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")}
}

// line returns source line n (1-based), or "" when out of range.
func (s *source) line(n int) string {
	if n < 1 || n > len(s.lines) {
		return ""
	}
	return s.lines[n-1]
}
