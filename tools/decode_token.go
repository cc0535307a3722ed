package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpauth/mcpauth/auth"
)

func decodeTokenTool() mcp.Tool {
	return mcp.NewTool("decode_token",
		mcp.WithDescription("Decode any JWT (admin only): header, claims, whether the signature is valid for this server, why not, and time left. "+
			"Works on foreign and malformed tokens."),
		mcp.WithString("token", mcp.Required(), mcp.Description("The token to inspect (with or without a 'Bearer ' prefix).")),
		mcp.WithReadOnlyHintAnnotation(true),
		mcp.WithIdempotentHintAnnotation(true),
		mcp.WithOpenWorldHintAnnotation(false),
	)
}

func (t *Toolset) decodeToken(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	a, err := parseArgs(req, "token")
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	tok, ok, err := a.str("token")
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	if !ok || strings.TrimSpace(tok) == "" {
		return mcp.NewToolResultError(`argument "token" is required`), nil
	}
	tok = strings.TrimSpace(tok)
	if len(tok) > 7 && strings.EqualFold(tok[:7], "bearer ") {
		tok = strings.TrimSpace(tok[7:])
	}
	in := t.deps.Inspector.Inspect(tok)
	return mcp.NewToolResultStructured(in, FormatInspection(in)), nil
}

// FormatInspection renders an inspection for people: a verdict line, then
// the decoded header and claims.
func FormatInspection(in auth.Inspection) string {
	var b strings.Builder
	switch {
	case in.Valid:
		b.WriteString("Valid token: accepted by this server.\n")
	default:
		fmt.Fprintf(&b, "Not accepted by this server: %s\n", in.Reason)
	}
	if !in.Decodable {
		return b.String()
	}
	fmt.Fprintf(&b, "Signature valid: %t\n", in.SignatureValid)
	if in.ExpiresAt != nil {
		fmt.Fprintf(&b, "Expires at: %s (%s)\n", isoTime(*in.ExpiresAt), in.TimeLeft)
	} else if in.TimeLeft != "" {
		fmt.Fprintf(&b, "Expires: %s\n", in.TimeLeft)
	}
	h, _ := json.MarshalIndent(in.Header, "", "  ")
	c, _ := json.MarshalIndent(in.Claims, "", "  ")
	fmt.Fprintf(&b, "\nHeader:\n%s\n\nClaims:\n%s\n", h, c)
	return b.String()
}
