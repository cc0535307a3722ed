// Package policy decides which scopes a caller needs to see and use each
// tool, prompt and resource. It knows names and scopes, nothing about MCP
// transports: the server asks it once per request with the verified
// claims' scopes.
//
// Rules map a name (exact, or a glob where * matches any run of characters)
// to the scopes a caller must hold, all of them. The most specific matching
// rule decides: an exact name beats any glob, and a glob with more literal
// characters beats one with fewer. Rules equally specific are combined (all
// their scopes are needed; a deny among them denies), so the outcome never
// depends on the order rules were written in. A name no rule matches
// follows the default.
package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/internal/strictjson"
	"github.com/mcpauth/mcpauth/internal/untrusted"
)

// Kind is what a name refers to.
type Kind string

// The kinds of names a policy covers. Resources are named by URI (or, in
// lists of templates, by URI template).
const (
	Tool     Kind = "tool"
	Prompt   Kind = "prompt"
	Resource Kind = "resource"
)

// Kinds lists every kind, in the order documents name them.
var Kinds = []Kind{Tool, Prompt, Resource}

// Need is what a name requires of a caller.
type Need struct {
	// Scopes must all be held (the admin scope holds every scope). Empty:
	// any authenticated caller.
	Scopes []string
	// Deny: nobody may see or use the name.
	Deny bool
}

// Allows reports whether a caller holding granted meets the need.
func (n Need) Allows(granted auth.Scopes) bool {
	if n.Deny {
		return false
	}
	for _, s := range n.Scopes {
		if !granted.Has(s) {
			return false
		}
	}
	return true
}

// Missing returns the needed scopes that granted lacks.
func (n Need) Missing(granted auth.Scopes) []string {
	var out []string
	for _, s := range n.Scopes {
		if !granted.Has(s) {
			out = append(out, s)
		}
	}
	return out
}

// String renders the need for logs and tool output: "deny", "any caller",
// or the space-separated scopes.
func (n Need) String() string {
	switch {
	case n.Deny:
		return "deny"
	case len(n.Scopes) == 0:
		return "any caller"
	}
	return strings.Join(n.Scopes, " ")
}

// Requirement is a rule's right-hand side as an operator writes it: a list
// of scopes (all needed; [] for any authenticated caller), "allow" (the
// same as []) or "deny".
type Requirement struct {
	Need
}

// UnmarshalJSON reads ["a","b"], [], "allow" or "deny".
func (r *Requirement) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		switch s {
		case "deny":
			r.Need = Need{Deny: true}
		case "allow":
			r.Need = Need{}
		default:
			return fmt.Errorf(`%q is not a requirement: use a list of scopes (e.g. ["crm:read"]), "allow" or "deny"`, untrusted.Clip(s, 40))
		}
		return nil
	}
	var scopes []string
	if err := json.Unmarshal(b, &scopes); err != nil {
		return errors.New(`a requirement is a list of scopes (e.g. ["crm:read"]), "allow" or "deny"`)
	}
	if err := auth.ValidateScopes(scopes); err != nil {
		return err
	}
	r.Need = Need{Scopes: auth.NormalizeScopes(scopes)}
	return nil
}

// MarshalJSON writes the form UnmarshalJSON reads.
func (r Requirement) MarshalJSON() ([]byte, error) {
	if r.Deny {
		return json.Marshal("deny")
	}
	return json.Marshal(append([]string{}, r.Scopes...))
}

// Config is a policy as an operator writes it (the "policy" member of the
// upstreams file, or a file of its own).
type Config struct {
	// Default applies to names no rule matches. Nil: the caller of New
	// chooses (deny in production).
	Default *Requirement `json:"default,omitempty"`
	// Tools, Prompts and Resources map names or globs to requirements.
	Tools     map[string]Requirement `json:"tools,omitempty"`
	Prompts   map[string]Requirement `json:"prompts,omitempty"`
	Resources map[string]Requirement `json:"resources,omitempty"`
}

// Parse reads a Config strictly: unknown members and trailing data are
// errors, so a misspelt "tool" never silently leaves every tool to the
// default.
func Parse(b []byte) (Config, error) {
	var c Config
	if err := strictjson.Decode(b, &c); err != nil {
		return Config{}, fmt.Errorf("policy: %w", err)
	}
	return c, nil
}

func (c Config) rules(k Kind) map[string]Requirement {
	switch k {
	case Tool:
		return c.Tools
	case Prompt:
		return c.Prompts
	}
	return c.Resources
}

// rule is one compiled pattern.
type rule struct {
	pattern string
	parts   []string // pattern split at '*'; one part: exact
	need    Need
	builtin bool
}

func (r rule) exact() bool { return len(r.parts) == 1 }

// literal is how many non-wildcard characters the pattern has.
func (r rule) literal() int { return len(r.pattern) - (len(r.parts) - 1) }

func (r rule) match(name string) bool {
	if r.exact() {
		return name == r.pattern
	}
	return globMatch(r.parts, name)
}

// globMatch matches name against a pattern split at its '*'s.
func globMatch(parts []string, name string) bool {
	if !strings.HasPrefix(name, parts[0]) {
		return false
	}
	name = name[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(name, p)
		if i < 0 {
			return false
		}
		name = name[i+len(p):]
	}
	return len(name) >= len(last) && strings.HasSuffix(name, last)
}

// Policy is a compiled, immutable policy. The zero value is not usable;
// build one with New.
type Policy struct {
	rules map[Kind][]rule
	def   Need
}

// Builtin names the requirement of one of the server's own names, used
// unless an operator rule names it exactly.
type Builtin struct {
	Kind Kind
	Name string
	Need Need
}

// New compiles cfg. def is the default when cfg names none. Builtins are
// exact rules that an operator's exact rule for the same name replaces;
// no glob overrides them.
func New(cfg Config, def Need, builtins ...Builtin) (*Policy, error) {
	p := &Policy{rules: map[Kind][]rule{}, def: def}
	if cfg.Default != nil {
		p.def = cfg.Default.Need
	}
	for _, k := range Kinds {
		for pattern, req := range cfg.rules(k) {
			if pattern == "" {
				return nil, fmt.Errorf("policy: %ss: an empty name matches nothing", k)
			}
			if strings.Contains(pattern, "**") {
				return nil, fmt.Errorf("policy: %ss: %q: write one * (it already matches any run of characters)", k, pattern)
			}
			p.rules[k] = append(p.rules[k], rule{pattern: pattern, parts: strings.Split(pattern, "*"), need: req.Need})
		}
	}
	for _, b := range builtins {
		if _, ok := cfg.rules(b.Kind)[b.Name]; ok {
			continue // the operator's exact rule replaces it
		}
		p.rules[b.Kind] = append(p.rules[b.Kind], rule{pattern: b.Name, parts: []string{b.Name}, need: b.Need, builtin: true})
	}
	for _, rs := range p.rules {
		sort.Slice(rs, func(i, j int) bool { return rs[i].pattern < rs[j].pattern })
	}
	return p, nil
}

// Need returns what the named tool, prompt or resource requires.
func (p *Policy) Need(k Kind, name string) Need {
	// Every tools/call asks this three times (scope challenge, list
	// filter, guard): the best matches are kept on the stack.
	var buf [4]*rule
	best := buf[:0]
	rules := p.rules[k]
	for i := range rules {
		r := &rules[i]
		if !r.match(name) {
			continue
		}
		switch c := compare(r, best); {
		case c > 0:
			best = append(best[:0], r)
		case c == 0:
			best = append(best, r)
		}
	}
	if len(best) == 0 {
		return p.def
	}
	return combine(best)
}

// compare orders r against the current best matches (all equally
// specific): positive when r is more specific.
func compare(r *rule, best []*rule) int {
	if len(best) == 0 {
		return 1
	}
	b := best[0]
	if r.exact() != b.exact() {
		if r.exact() {
			return 1
		}
		return -1
	}
	return r.literal() - b.literal()
}

func combine(rs []*rule) Need {
	if len(rs) == 1 {
		return rs[0].need
	}
	var n Need
	for _, r := range rs {
		n.Deny = n.Deny || r.need.Deny
		for _, s := range r.need.Scopes {
			if !slices.Contains(n.Scopes, s) {
				n.Scopes = append(n.Scopes, s)
			}
		}
	}
	return n
}

// Default is what names no rule matches require.
func (p *Policy) Default() Need { return p.def }

// Scopes lists every scope any rule or the default names, sorted: the
// scopes worth advertising and minting.
func (p *Policy) Scopes() []string {
	var out []string
	add := func(n Need) {
		for _, s := range n.Scopes {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	add(p.def)
	for _, rs := range p.rules {
		for _, r := range rs {
			add(r.need)
		}
	}
	sort.Strings(out)
	return out
}
