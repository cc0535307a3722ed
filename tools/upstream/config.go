// Package upstream relays MCP servers that operators already run
// ("upstreams") through mcpauth: it connects to each with mcp-go's client
// (stdio, Streamable HTTP, or legacy SSE where that is all a server
// offers), keeps the connection up, and turns what each offers into
// namespaced tools, prompts and resources of mcpauth's own server, whose
// handlers forward calls. A caller's token never reaches an upstream.
package upstream

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/internal/strictjson"
)

// Separator joins an upstream's prefix and the names it serves:
// "crm__search".
const Separator = "__"

// Entry is one upstream as written in the mcpServers file: either a
// command spoken to over stdio, or a URL spoken to over Streamable HTTP
// (legacy SSE when the server offers only that).
type Entry struct {
	// Name is the entry's key in mcpServers.
	Name string `json:"-"`
	// Command, Args and Env start a stdio server. Env adds to mcpauth's
	// own environment minus its secrets (see childEnv).
	Command string            `json:"command,omitempty"`
	Args    []string          `json:"args,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	// URL names an HTTP server; Headers are sent with every request (the
	// static credential an upstream expects). Values may name environment
	// variables as ${VAR}; they are resolved when the file is loaded and
	// never logged.
	URL     string            `json:"url,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	// Type is what clients' configs write: "stdio", "http" or
	// "streamable-http" (Streamable HTTP, falling back to SSE), "sse"
	// (legacy SSE only). Empty: from Command or URL.
	Type string `json:"type,omitempty"`
	// Prefix namespaces the upstream's tools and prompts as
	// prefix + "__" + name. Nil: the entry's name. "": names unchanged (a
	// collision is then an error).
	Prefix *string `json:"prefix,omitempty"`
	// Timeout bounds each call forwarded to this upstream ("30s");
	// zero: the gateway's default.
	Timeout Duration `json:"timeout,omitempty"`
	// CallerToken, for a "url" server, makes mcpauth send it a token it
	// mints for that upstream alone in place of a static credential, so
	// the upstream knows who calls (never the caller's own token).
	CallerToken *CallerToken `json:"callerToken,omitempty"`
}

// CallerToken configures the tokens an HTTP upstream receives as
// "Authorization: Bearer …": sub is the caller (or GatewaySubject for the
// gateway's own requests: connecting, reading lists, the listening
// stream), aud the upstream, scopes within the caller's.
type CallerToken struct {
	// Audience is the token's aud; empty: the entry's URL. It must not be
	// one of mcpauth's own resources (checked where those are known), so
	// mcpauth never accepts a token it minted for an upstream.
	Audience string `json:"audience,omitempty"`
	// Scopes, when set, are the most the upstream sees: the caller's
	// scopes among them (and these, for the gateway's own requests).
	// Empty: the caller's scopes as they are.
	Scopes []string `json:"scopes,omitempty"`
	// Lifetime of each token; 5m when zero, at most 1h. A token never
	// outlives the caller's own.
	Lifetime Duration `json:"lifetime,omitempty"`
}

// Caller-token lifetimes.
const (
	defaultCallerTokenLifetime = 5 * time.Minute
	maxCallerTokenLifetime     = time.Hour
)

// Duration is a time.Duration written as "30s" in JSON.
type Duration time.Duration

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New(`a duration is a string such as "30s" or "2m"`)
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		return fmt.Errorf(`%q is not a positive duration such as "30s" or "2m"`, s)
	}
	*d = Duration(v)
	return nil
}

// IsStdio reports whether the entry is spoken to over stdio.
func (e Entry) IsStdio() bool { return e.Command != "" }

// NamePrefix is what the entry's names are prefixed with, "" for none.
func (e Entry) NamePrefix() string {
	if e.Prefix == nil {
		return e.Name + Separator
	}
	if *e.Prefix == "" {
		return ""
	}
	return *e.Prefix + Separator
}

// File is the upstreams file: the mcpServers map every MCP client's
// config uses, and optionally the operator's policy (kept raw here; the
// policy package reads it).
type File struct {
	Servers []Entry
	Policy  json.RawMessage
}

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// Load reads and checks an upstreams file. lookup resolves ${VAR} in
// header and env values (os.LookupEnv in the binary); a variable it does
// not know is an error.
func Load(path string, lookup func(string) (string, bool)) (File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return File{}, fmt.Errorf("upstreams file: %w", err)
	}
	f, err := Parse(b, lookup)
	if err != nil {
		return File{}, fmt.Errorf("upstreams file %s: %w", path, err)
	}
	return f, nil
}

// Parse reads an upstreams document; see Load.
func Parse(b []byte, lookup func(string) (string, bool)) (File, error) {
	var doc struct {
		MCPServers map[string]json.RawMessage `json:"mcpServers"`
		Policy     json.RawMessage            `json:"policy"`
	}
	if err := strictjson.Decode(b, &doc); err != nil {
		return File{}, err
	}
	if doc.MCPServers == nil && doc.Policy == nil {
		return File{}, errors.New(`no "mcpServers" object: write {"mcpServers": {"name": {"command": …} or {"url": …}}}`)
	}
	f := File{Policy: doc.Policy}
	names := make([]string, 0, len(doc.MCPServers))
	for name := range doc.MCPServers {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		e, err := parseEntry(name, doc.MCPServers[name], lookup)
		if err != nil {
			return File{}, fmt.Errorf("mcpServers %q: %w", name, err)
		}
		f.Servers = append(f.Servers, e)
	}
	return f, checkPrefixes(f.Servers)
}

func parseEntry(name string, raw json.RawMessage, lookup func(string) (string, bool)) (Entry, error) {
	if !validName.MatchString(name) || strings.Contains(name, Separator) {
		return Entry{}, errors.New(`a name is 1-64 letters, digits, "_", "-" or ".", starting with a letter or digit, without "__"`)
	}
	var e Entry
	if err := strictjson.Decode(raw, &e); err != nil {
		return Entry{}, err
	}
	e.Name = name
	if err := e.check(); err != nil {
		return Entry{}, err
	}
	var err error
	if e.Headers, err = expandAll(e.Headers, lookup); err != nil {
		return Entry{}, fmt.Errorf("headers: %w", err)
	}
	if e.Env, err = expandAll(e.Env, lookup); err != nil {
		return Entry{}, fmt.Errorf("env: %w", err)
	}
	return e, nil
}

func (e *Entry) check() error {
	switch {
	case e.Command == "" && e.URL == "":
		return errors.New(`needs "command" (a stdio server) or "url" (an HTTP server)`)
	case e.Command != "" && e.URL != "":
		return errors.New(`has both "command" and "url": an upstream is one or the other`)
	case e.Command != "" && len(e.Headers) > 0:
		return errors.New(`"headers" apply to "url" servers only`)
	case e.URL != "" && (len(e.Args) > 0 || len(e.Env) > 0):
		return errors.New(`"args" and "env" apply to "command" servers only`)
	}
	switch e.Type {
	case "", "stdio", "http", "streamable-http", "streamableHttp", "sse":
	default:
		return fmt.Errorf(`"type" %q is not one of stdio, http, streamable-http, sse`, e.Type)
	}
	if (e.Type == "stdio") != (e.Command != "") && e.Type != "" {
		return fmt.Errorf(`"type" %q does not fit an entry with %s`, e.Type, map[bool]string{true: `"command"`, false: `"url"`}[e.Command != ""])
	}
	if e.URL != "" {
		u, err := url.Parse(e.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf(`"url" %q is not an http(s) URL`, e.URL)
		}
		if u.User != nil {
			return errors.New(`"url" must not carry credentials; put them in "headers"`)
		}
	}
	if e.Prefix != nil && *e.Prefix != "" && (!validName.MatchString(*e.Prefix) || strings.Contains(*e.Prefix, Separator)) {
		return fmt.Errorf(`"prefix" %q: letters, digits, "_", "-" or "." without "__", or "" for none`, *e.Prefix)
	}
	for k := range e.Headers {
		if strings.EqualFold(k, "Mcp-Session-Id") || strings.EqualFold(k, "Mcp-Protocol-Version") {
			return fmt.Errorf("header %q is the transport's to set", k)
		}
		if e.CallerToken != nil && strings.EqualFold(k, "Authorization") {
			return errors.New(`both "callerToken" and an "Authorization" header are set: the upstream gets one credential; keep one`)
		}
	}
	return e.checkCallerToken()
}

func (e *Entry) checkCallerToken() error {
	ct := e.CallerToken
	if ct == nil {
		return nil
	}
	if e.Command != "" {
		return errors.New(`"callerToken" applies to "url" servers only (a stdio server gets the caller in each request's _meta)`)
	}
	if ct.Audience != "" {
		if u, err := url.Parse(ct.Audience); err != nil || u.Scheme == "" {
			return fmt.Errorf(`"callerToken" "audience" %q is not an absolute URI`, ct.Audience)
		}
	}
	if ct.Lifetime == 0 {
		ct.Lifetime = Duration(defaultCallerTokenLifetime)
	}
	if time.Duration(ct.Lifetime) > maxCallerTokenLifetime || time.Duration(ct.Lifetime) < time.Second {
		return fmt.Errorf(`"callerToken" "lifetime" %s: between 1s and %s`, ct.Lifetime, Duration(maxCallerTokenLifetime))
	}
	if err := auth.ValidateScopes(ct.Scopes); err != nil {
		return fmt.Errorf(`"callerToken" "scopes": %w`, err)
	}
	ct.Scopes = auth.NormalizeScopes(ct.Scopes)
	return nil
}

// TokenAudience is the aud of the tokens the entry's upstream receives
// ("" without callerToken).
func (e Entry) TokenAudience() string {
	switch {
	case e.CallerToken == nil:
		return ""
	case e.CallerToken.Audience != "":
		return e.CallerToken.Audience
	}
	return e.URL
}

// checkPrefixes refuses two entries serving names under the same prefix
// (the same names would collide). Unprefixed entries are checked name by
// name once their lists are known.
func checkPrefixes(es []Entry) error {
	seen := map[string]string{}
	for _, e := range es {
		p := e.NamePrefix()
		if p == "" {
			continue
		}
		if other, ok := seen[p]; ok {
			return fmt.Errorf("mcpServers %q and %q both serve names prefixed %q; give one another \"prefix\"", other, e.Name, p)
		}
		seen[p] = e.Name
	}
	return nil
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

func expandAll(m map[string]string, lookup func(string) (string, bool)) (map[string]string, error) {
	if len(m) == 0 {
		return m, nil
	}
	out := make(map[string]string, len(m))
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		var missing string
		out[k] = envRef.ReplaceAllStringFunc(m[k], func(ref string) string {
			name := envRef.FindStringSubmatch(ref)[1]
			v, ok := lookup(name)
			if !ok && missing == "" {
				missing = name
			}
			return v
		})
		if missing != "" {
			return nil, fmt.Errorf("%q names ${%s}, which is not set", k, missing)
		}
	}
	return out, nil
}

// String renders the duration as Go does ("5s").
func (d Duration) String() string { return time.Duration(d).String() }
