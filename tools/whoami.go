package tools

import (
	"context"
	"fmt"
	"strings"

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
	return mcp.NewToolResultStructured(res, text), nil
}
