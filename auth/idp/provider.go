package idp

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/internal/strictjson"
	"github.com/mcpauth/mcpauth/internal/untrusted"
)

// Provider is one identity provider the operator trusts.
type Provider struct {
	// Name is the provider's short name: callers' subjects are
	// "<Name>:<sub>". 1-32 letters, digits, '.', '_' or '-'.
	Name string `json:"name"`
	// Issuer is the provider's issuer URL, compared exactly with iss and
	// with the issuer its discovery document names.
	Issuer string `json:"issuer"`
	// Audience must appear in aud; empty: one of this server's resource
	// URLs (Options.Resources).
	Audience string `json:"audience,omitempty"`
	// ScopeClaim names the claim carrying scopes: "scope" (the default;
	// a space-separated string or an array), "scp", or a roles claim,
	// dotted for a nested one ("realm_access.roles").
	ScopeClaim string `json:"scope_claim,omitempty"`
	// ScopeMap maps the provider's values to mcpauth scopes. When set,
	// values it does not name are dropped unless KeepUnmapped. Without
	// it the provider's values are mcpauth's scope names, except
	// "admin", which only a ScopeMap entry can grant.
	ScopeMap     map[string]auth.Scopes `json:"scope_map,omitempty"`
	KeepUnmapped bool                   `json:"keep_unmapped,omitempty"`
	// JWKSURI, when set, is used instead of discovering the provider's
	// metadata.
	JWKSURI string `json:"jwks_uri,omitempty"`
	// AllowTypJWT accepts tokens whose typ header is "JWT", as some
	// providers write on access tokens. Off, only RFC 9068's "at+jwt" (or
	// no typ) is accepted, which keeps ID tokens out even when their
	// audience matches.
	AllowTypJWT bool `json:"allow_typ_jwt,omitempty"`
}

var validName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,32}$`)

// Load reads and checks a trusted-issuers file:
//
//	{"providers": [{"name": "corp", "issuer": "https://login.example.com", …}]}
func Load(path string, allowLoopbackHTTP bool) ([]Provider, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("trusted issuers file: %w", err)
	}
	ps, err := Parse(b, allowLoopbackHTTP)
	if err != nil {
		return nil, fmt.Errorf("trusted issuers file %s: %w", path, err)
	}
	return ps, nil
}

// Parse reads a trusted-issuers document (see Load). Unknown members,
// bad URLs and repeated names or issuers are errors naming the entry.
func Parse(b []byte, allowLoopbackHTTP bool) ([]Provider, error) {
	var doc struct {
		Providers []json.RawMessage `json:"providers"`
	}
	if err := strictjson.Decode(b, &doc); err != nil {
		return nil, err
	}
	if len(doc.Providers) == 0 {
		return nil, errors.New(`no providers: write {"providers": [{"name": "corp", "issuer": "https://…"}]}`)
	}
	ps := make([]Provider, len(doc.Providers))
	for i, raw := range doc.Providers {
		// Keys refuses a member named twice, which Decode would let the
		// last one win.
		if _, err := strictjson.Keys(raw); err != nil {
			return nil, fmt.Errorf("providers[%d]: %w", i, err)
		}
		if err := strictjson.Decode(raw, &ps[i]); err != nil {
			return nil, fmt.Errorf("providers[%d]: %w", i, err)
		}
	}
	return ps, Check(ps, allowLoopbackHTTP)
}

// Check validates providers, naming the first entry at fault.
func Check(ps []Provider, allowLoopbackHTTP bool) error {
	names, issuers := map[string]int{}, map[string]int{}
	for i, p := range ps {
		if err := p.check(allowLoopbackHTTP); err != nil {
			return fmt.Errorf("providers[%d] %q: %w", i, p.Name, err)
		}
		if j, dup := names[p.Name]; dup {
			return fmt.Errorf("providers[%d] and providers[%d] are both named %q", j, i, p.Name)
		}
		if j, dup := issuers[p.Issuer]; dup {
			return fmt.Errorf("providers[%d] %q and providers[%d] %q both name issuer %q", j, ps[j].Name, i, p.Name, p.Issuer)
		}
		names[p.Name], issuers[p.Issuer] = i, i
	}
	return nil
}

func (p Provider) check(allowLoopbackHTTP bool) error {
	if !validName.MatchString(p.Name) {
		return errors.New(`"name" must be 1-32 letters, digits, '.', '_' or '-'`)
	}
	switch strings.ToLower(p.Name) {
	case "oauth":
		// mcpauth's OAuth server records its mints as "oauth:<approver>".
		return errors.New(`"name" "oauth" is reserved for mcpauth's own sign-in`)
	case "mcpauth":
		// The gateway's own requests reach upstreams as "mcpauth:gateway".
		return errors.New(`"name" "mcpauth" is reserved for mcpauth itself`)
	}
	if err := checkURL(p.Issuer, allowLoopbackHTTP); err != nil {
		return fmt.Errorf(`"issuer": %w`, err)
	}
	if p.JWKSURI != "" {
		if err := checkURL(p.JWKSURI, allowLoopbackHTTP); err != nil {
			return fmt.Errorf(`"jwks_uri": %w`, err)
		}
	}
	if strings.Trim(p.ScopeClaim, ".") != p.ScopeClaim || strings.Contains(p.ScopeClaim, "..") {
		return fmt.Errorf(`"scope_claim" %q is not a claim name or a dotted path`, p.ScopeClaim)
	}
	for from, to := range p.ScopeMap {
		if err := auth.ValidateScopes(to); err != nil || from == "" {
			return fmt.Errorf(`"scope_map" %q: %v`, untrusted.Clip(from, 40), err)
		}
	}
	if p.KeepUnmapped && p.ScopeMap == nil {
		return errors.New(`"keep_unmapped" needs a "scope_map"`)
	}
	return nil
}

// checkURL accepts an absolute https URL without query, fragment or user
// info; http only to a loopback host, and only when allowed (development).
func checkURL(raw string, allowLoopbackHTTP bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q is not an absolute URL without query, fragment or user info", untrusted.Clip(raw, 80))
	}
	switch {
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && allowLoopbackHTTP && loopback(u.Hostname()):
		return nil
	case u.Scheme == "http" && loopback(u.Hostname()):
		return fmt.Errorf("%q: http is allowed only to loopback in development mode; use https", raw)
	}
	return fmt.Errorf("%q must be an https URL", untrusted.Clip(raw, 80))
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
