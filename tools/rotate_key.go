package tools

import (
	"context"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/auth/keyring"
	"github.com/mcpauth/mcpauth/auth/keys"
)

// KeyRotator makes a new signing key active (*keyring.Ring).
type KeyRotator interface {
	Rotate(ctx context.Context, alg, by string) (keyring.Rotated, error)
}

func rotateKeyTool() mcp.Tool {
	return mcp.NewTool("rotate_signing_key",
		mcp.WithDescription("Make a new signing key active (admin only). New tokens are signed with it at once on every replica; "+
			"the keys that signed until now keep verifying their tokens until the last of those expires (capped by MCP_KEY_GRACE_MAX), "+
			"then they are retired. list_keys shows each key's state. Needs registry-kept keys (MCP_KEY_ENCRYPTION_SECRET)."),
		mcp.WithString("alg", mcp.Description("Algorithm of the new key: HS256, ES256, EdDSA or RS256 (default: the current key's)."),
			mcp.Enum(keys.Algorithms...)),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithIdempotentHintAnnotation(false),
		mcp.WithOpenWorldHintAnnotation(false),
	)
}

func (t *Toolset) rotateKey(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	a, err := parseArgs(req, "alg")
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	alg, _, err := a.Str("alg")
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	alg = strings.TrimSpace(alg)
	if alg != "" {
		if err := keys.CheckAlg(alg); err != nil {
			return mcp.NewToolResultError("alg: " + err.Error()), nil
		}
	}
	by := "unknown"
	if caller, ok := auth.ClaimsFrom(ctx); ok {
		by = caller.Subject
	}
	r, err := t.deps.Rotator.Rotate(ctx, alg, by)
	if err != nil {
		return mcp.NewToolResultError("Cannot rotate the signing key: " + err.Error()), nil
	}
	return mcp.NewToolResultStructured(r, FormatRotated(r)), nil
}

// FormatRotated renders a rotation for people.
func FormatRotated(r keyring.Rotated) string {
	var b strings.Builder
	fmt.Fprintf(&b, "New signing key %s (%s) is active: new tokens are signed with it.", r.KeyID, r.Alg)
	if len(r.Previous) > 0 {
		fmt.Fprintf(&b, "\nThe previous key(s) %s keep verifying their tokens until the last of those expires (at most %s), then they are retired.",
			strings.Join(r.Previous, ", "), r.GraceMax)
	}
	return b.String()
}
