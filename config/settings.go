package config

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
)

// Settings is one connector instance's settings block, kept as parsed YAML
// until the connector decodes it into its own type. It satisfies the
// connectors.Settings interface. The zero Settings (no block, or an empty
// one) decodes to nothing without error.
type Settings struct {
	src       *source
	node      ast.Node // the block's mapping; nil when absent or null
	doc       ast.Node // the document body, for anchors defined outside the block
	connector string   // instance name, for messages
	line, col int      // position of the "settings" key, or of the connector
}

// Decode decodes the settings block into v, which must be a non-nil
// pointer (usually to a struct with `yaml:"name"` tags). Decoding is
// strict: a key that matches no field (at any depth) or a value of the
// wrong type is an *Error whose position points into the original
// roster.yaml. Fields absent from the block keep the value v already
// holds, so a connector can fill in defaults before calling Decode; an
// absent or empty block leaves v untouched. A failure inside a custom
// unmarshaler that carries no position is reported at the settings key.
func (s Settings) Decode(v any) error {
	rv := reflect.ValueOf(v)
	if !rv.IsValid() || rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("config: Settings.Decode needs a non-nil pointer, got %T", v)
	}
	if s.node == nil {
		return nil
	}
	dec, err := s.decoder()
	if err != nil {
		return err
	}
	if err := dec.DecodeFromNode(s.node, v); err != nil {
		return s.wrap(err)
	}
	return nil
}

// IsZero reports whether the block is absent or empty.
func (s Settings) IsZero() bool {
	if s.node == nil {
		return true
	}
	m, ok := s.node.(*ast.MappingNode)
	return ok && len(m.Values) == 0
}

// decoder returns a strict decoder that knows every anchor of the file, so
// an alias inside the block may refer to an anchor outside it.
func (s Settings) decoder() (*yaml.Decoder, error) {
	dec := yaml.NewDecoder(strings.NewReader(""), yaml.DisallowUnknownField())
	if s.doc != nil {
		var all any
		if err := dec.DecodeFromNode(s.doc, &all); err != nil {
			return nil, s.wrap(err)
		}
	}
	return dec, nil
}

// value returns the block as plain YAML values with key order kept, for
// Config.Marshal.
func (s Settings) value() (any, error) {
	if s.node == nil {
		return nil, nil
	}
	dec, err := s.decoder()
	if err != nil {
		return nil, err
	}
	var out yaml.MapSlice
	if err := dec.DecodeFromNode(s.node, &out); err != nil {
		return nil, s.wrap(err)
	}
	return out, nil
}

// wrap turns a go-yaml error into an *Error positioned in roster.yaml.
func (s Settings) wrap(err error) error {
	msg := fmt.Sprintf("connector %q settings: ", s.connector)
	var ye yaml.Error
	if errors.As(err, &ye) && ye.GetToken() != nil {
		p := ye.GetToken().Position
		e := s.src.errorAt(p.Line, p.Column, msg+yamlMessage(ye.GetMessage()))
		e.err = err
		return e
	}
	e := s.src.errorAt(s.line, s.col, msg+err.Error())
	e.err = err
	return e
}
