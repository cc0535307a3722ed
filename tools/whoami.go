package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpauth/mcpauth/auth"
)

func whoamiTool() mcp.Tool {
	return mcp.NewTool("whoami",
		mcp.WithDescription("Show the identity of the token this session uses: client id, scopes, expiry, and the tools it may call."),
		mcp.WithReadOnlyHintAnnotation(true),
		mcp.WithIdempotentHintAnnotation(true),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithOpenWorldHintAnnotation(false),
	)
}

// WhoamiResult is whoami's structured content.
type WhoamiResult struct {
	ClientID  string   `json:"client_id"`
	Scopes    []string `json:"scopes"`
	JTI       string   `json:"jti,omitempty"`
	Issuer    string   `json:"issuer,omitempty"`
	ExpiresAt *string  `json:"expires_at"`
	Admin     bool     `json:"admin"`
	// MayCall lists the tools this token may call under the policy in
	// force.
	MayCall []string `json:"may_call"`
}

func (t *Toolset) whoami(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	if _, err := parseArgs(req); err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	c, _ := auth.ClaimsFrom(ctx) // guard guarantees presence
	calls, cacheable := t.mayCallKey(ctx, c.Scope)
	key := whoamiKey{calls: calls, subject: c.Subject, jti: c.ID, issuer: c.Issuer}
	if e, ok := c.Expires(); ok {
		key.expires, key.hasExpiry = e.UnixNano(), true
	}
	if cacheable {
		if r, ok := t.whoamis.get(key); ok {
			return r.result(), nil
		}
	}
	res := WhoamiResult{
		ClientID: c.Subject,
		Scopes:   append([]string{}, c.Scope...),
		JTI:      c.ID,
		Issuer:   c.Issuer,
		Admin:    c.Scope.IsAdmin(),
		MayCall:  t.mayCall(ctx, c.Scope),
	}
	exp := "never"
	if e, ok := c.Expires(); ok {
		s := isoTime(e)
		res.ExpiresAt = &s
		exp = s
	}
	text := fmt.Sprintf("You are %q with scopes [%s]; your token expires: %s.\nYou may call: %s.",
		c.Subject, strings.Join(c.Scope, " "), exp, strings.Join(res.MayCall, ", "))
	structured, err := json.Marshal(res)
	if err != nil {
		return mcp.NewToolResultStructured(res, text), nil
	}
	r := whoamiAnswer{structured: structured, text: text}
	if cacheable {
		t.whoamis.put(key, r)
	}
	return r.result(), nil
}

// whoamiKey is everything whoami's answer depends on: the token's
// identity and expiry, and what may_call depends on.
type whoamiKey struct {
	calls                mayCallKey
	subject, jti, issuer string
	expires              int64
	hasExpiry            bool
}

// whoamiAnswer is whoami's answer rendered once: its structured content
// encoded (mcp-go writes it as it is) and its text.
type whoamiAnswer struct {
	structured json.RawMessage
	text       string
}

// result is the tool result, the same as mcp.NewToolResultStructured
// would give for the decoded structured content, on the wire.
func (a whoamiAnswer) result() *mcp.CallToolResult {
	return &mcp.CallToolResult{
		Content:              []mcp.Content{mcp.NewTextContent(a.text)},
		RawStructuredContent: a.structured,
	}
}

// maxWhoamiEntries bounds the remembered answers (one per token and
// policy); when full, all are dropped.
const maxWhoamiEntries = 1024

// whoamiCache remembers whoami's answers: a client asks it again and
// again with the same token, and the answer only changes with the token,
// the policy or the tool set (all in the key).
type whoamiCache struct {
	mu sync.Mutex
	m  map[whoamiKey]whoamiAnswer
}

func (c *whoamiCache) get(k whoamiKey) (whoamiAnswer, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[k]
	return v, ok
}

func (c *whoamiCache) put(k whoamiKey, v whoamiAnswer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxWhoamiEntries {
		c.m = map[whoamiKey]whoamiAnswer{}
	}
	c.m[k] = v
}
