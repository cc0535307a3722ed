package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/auth/registry"
)

func decodeTokenTool() mcp.Tool {
	return mcp.NewTool("decode_token",
		mcp.WithDescription("Decode any JWT (admin only): header, claims, whether the signature is valid for this server and which key signed it, why not, and time left. "+
			"Works on foreign and malformed tokens."),
		mcp.WithString("token", mcp.Required(), mcp.Description("The token to inspect (with or without a 'Bearer ' prefix).")),
		mcp.WithReadOnlyHintAnnotation(true),
		mcp.WithIdempotentHintAnnotation(true),
		mcp.WithOpenWorldHintAnnotation(false),
	)
}

func (t *Toolset) decodeToken(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	a, err := parseArgs(req, "token")
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	tok, ok, err := a.Str("token")
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
	out := DecodeResult{Inspection: in}
	if in.Decodable {
		out.MayCall = t.mayCall(ctx, claimedScopes(in.Claims))
	}
	if jti := in.JTI; jti != "" && in.SignatureValid && t.deps.Tokens != nil {
		rec, err := t.deps.Tokens.Get(ctx, jti)
		switch {
		case err == nil:
			out.Registry = &RegistryInfo{Recorded: true, IssuedBy: rec.IssuedBy}
			if rec.Revoked() {
				out.Revoked = true
				out.Registry.RevokedAt = isoTime(rec.RevokedAt)
				out.Registry.RevokedBy = rec.RevokedBy
				out.Registry.RevokeReason = rec.RevokeReason
			}
		case errors.Is(err, registry.ErrNotFound):
			out.Registry = &RegistryInfo{Recorded: false}
		default:
			return mcp.NewToolResultError("Cannot read the registry: " + err.Error()), nil
		}
	}
	return mcp.NewToolResultStructured(out, FormatDecode(out)), nil
}

// DecodeResult is decode_token's structured content: the inspection plus
// what the registry knows of the token.
type DecodeResult struct {
	auth.Inspection
	Registry *RegistryInfo `json:"registry,omitempty"`
	// MayCall lists the tools the token's scopes may call under the
	// policy in force (were the token valid).
	MayCall []string `json:"may_call,omitempty"`
}

// RegistryInfo is the registry's record of a decoded token.
type RegistryInfo struct {
	Recorded     bool   `json:"recorded"`
	IssuedBy     string `json:"issued_by,omitempty"`
	RevokedAt    string `json:"revoked_at,omitempty"`
	RevokedBy    string `json:"revoked_by,omitempty"`
	RevokeReason string `json:"revoke_reason,omitempty"`
}

// FormatDecode renders a decode result for people.
func FormatDecode(d DecodeResult) string {
	var b strings.Builder
	if d.Registry != nil {
		switch {
		case !d.Registry.Recorded:
			b.WriteString("Registry: not recorded here (minted elsewhere with this secret?)\n")
		case d.Registry.RevokedAt != "":
			fmt.Fprintf(&b, "Registry: REVOKED at %s by %s", d.Registry.RevokedAt, d.Registry.RevokedBy)
			if d.Registry.RevokeReason != "" {
				fmt.Fprintf(&b, " (%s)", d.Registry.RevokeReason)
			}
			b.WriteString("\n")
		default:
			fmt.Fprintf(&b, "Registry: issued by %s, not revoked\n", d.Registry.IssuedBy)
		}
	}
	if d.MayCall != nil {
		fmt.Fprintf(&b, "May call: %s\n", strings.Join(d.MayCall, ", "))
	}
	return FormatInspection(d.Inspection) + b.String()
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
	if in.SignedBy != nil {
		fmt.Fprintf(&b, "Signed by: key %s (%s)\n", in.SignedBy.ID, in.SignedBy.Alg)
	}
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
