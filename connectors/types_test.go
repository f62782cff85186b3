package connectors

import "testing"

func TestParseEntitlement(t *testing.T) {
	tests := []struct {
		in      string
		want    Entitlement
		wantErr bool
	}{
		{in: "account", want: Entitlement{Kind: "account"}},
		{in: "account#admin", want: Entitlement{Kind: "account", Role: "admin"}},
		{in: "team/backend", want: Entitlement{Kind: "team", Resource: "backend"}},
		{in: "team/backend#maintainer", want: Entitlement{Kind: "team", Resource: "backend", Role: "maintainer"}},
		{in: "group/eng@piedpiper.com#MEMBER", want: Entitlement{Kind: "group", Resource: "eng@piedpiper.com", Role: "MEMBER"}},
		{in: "group/cn=vpn,ou=groups,dc=x/y", want: Entitlement{Kind: "group", Resource: "cn=vpn,ou=groups,dc=x/y"}},
		{in: "  channel/general  ", want: Entitlement{Kind: "channel", Resource: "general"}},
		{in: "", wantErr: true},
		{in: "team", wantErr: true},
		{in: "team/", wantErr: true},
		{in: "team/x#", wantErr: true},
		{in: "/x", wantErr: true},
		{in: "account/x", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseEntitlement(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseEntitlement(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if tt.wantErr {
			continue
		}
		if got != tt.want {
			t.Errorf("ParseEntitlement(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
		// The text form round-trips.
		if back, err := ParseEntitlement(got.String()); err != nil || back != got {
			t.Errorf("round trip of %q: %+v, %v", got.String(), back, err)
		}
	}
}

func TestEntitlementOrderAndKey(t *testing.T) {
	es := []Entitlement{
		{Kind: "team", Resource: "b"}, {Kind: "channel", Resource: "z"}, Account, {Kind: "team", Resource: "a", Role: "maintainer"},
	}
	SortEntitlements(es)
	want := []string{"account", "channel/z", "team/a#maintainer", "team/b"}
	for i, e := range es {
		if e.String() != want[i] {
			t.Fatalf("sorted[%d] = %s, want %s (all: %v)", i, e, want[i], es)
		}
	}
	a := Entitlement{Kind: "team", Resource: "x", Role: "member"}
	b := Entitlement{Kind: "team", Resource: "x", Role: "maintainer"}
	if a.Key() != b.Key() || a.Key().String() != "team/x" {
		t.Errorf("keys of role variants differ: %v %v", a.Key(), b.Key())
	}
}

func TestErrorKinds(t *testing.T) {
	rl := &Error{Kind: RateLimited, Op: "x", RetryAfter: 5}
	if !Retryable(rl) || RetryAfter(rl) != 5 || KindOf(rl) != RateLimited {
		t.Errorf("rate limited: retryable %v after %v kind %v", Retryable(rl), RetryAfter(rl), KindOf(rl))
	}
	nf := Errorf(NotFound, "grant", "team %s", "x")
	if Retryable(nf) || KindOf(nf) != NotFound || nf.Error() != "grant: team x" {
		t.Errorf("not found: retryable %v kind %v msg %q", Retryable(nf), KindOf(nf), nf.Error())
	}
}
