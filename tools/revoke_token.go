package tools

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/auth/registry"
)

// maxReasonLen bounds the recorded revocation reason.
const maxReasonLen = 500

func revokeTokenTool() mcp.Tool {
	return mcp.NewTool("revoke_token",
		mcp.WithDescription("Revoke tokens (admin only): one token by jti or by the token itself, or every token of a client_id. "+
			"Takes effect on the very next request; open sessions of a revoked token are closed. Give exactly one of jti, token or client_id."),
		mcp.WithString("jti", mcp.Description("The token id (jti claim) to revoke, as shown by list_clients/decode_token.")),
		mcp.WithString("token", mcp.Description("The token itself (with or without 'Bearer '); must have been issued by this server.")),
		mcp.WithString("client_id", mcp.Description("Revoke every token of this client.")),
		mcp.WithString("reason", mcp.Description("Why (recorded with who revoked and when), e.g. \"laptop stolen\"."), mcp.MaxLength(maxReasonLen)),
		mcp.WithDestructiveHintAnnotation(true),
		mcp.WithIdempotentHintAnnotation(true),
		mcp.WithOpenWorldHintAnnotation(false),
	)
}

// RevokedToken is one entry of revoke_token's structured content.
type RevokedToken struct {
	JTI          string `json:"jti"`
	ClientID     string `json:"client_id"`
	RevokedAt    string `json:"revoked_at"`
	RevokedBy    string `json:"revoked_by"`
	Reason       string `json:"reason,omitempty"`
	AlreadyFound bool   `json:"already_revoked"`
}

// RevokeResult is revoke_token's structured content.
type RevokeResult struct {
	Revoked []RevokedToken `json:"revoked"`
}

func (t *Toolset) revokeToken(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	a, err := parseArgs(req, "jti", "token", "client_id", "reason")
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	var vals [4]string
	var given []string
	for i, name := range []string{"jti", "token", "client_id", "reason"} {
		v, ok, err := a.Str(name)
		if err != nil {
			return mcp.NewToolResultError(err.Error()), nil
		}
		vals[i] = strings.TrimSpace(v)
		if ok && vals[i] != "" && i < 3 {
			given = append(given, name)
		}
	}
	jti, token, clientID, reason := vals[0], vals[1], vals[2], vals[3]
	if len(given) != 1 {
		return mcp.NewToolResultError("Give exactly one of jti, token or client_id (got " + describeGiven(given) + ")"), nil
	}
	if len(reason) > maxReasonLen {
		return mcp.NewToolResultError(fmt.Sprintf("reason is longer than %d characters", maxReasonLen)), nil
	}
	for _, r := range reason {
		if r < 0x20 || r == 0x7f {
			return mcp.NewToolResultError("reason must not contain control characters"), nil
		}
	}
	caller, _ := auth.ClaimsFrom(ctx)

	if token != "" {
		if len(token) > 7 && strings.EqualFold(token[:7], "bearer ") {
			token = strings.TrimSpace(token[7:])
		}
		in := t.deps.Inspector.Inspect(token)
		id, _ := in.Claims["jti"].(string)
		switch {
		case !in.Decodable:
			return mcp.NewToolResultError("Cannot revoke: not a token (" + in.Reason + ")"), nil
		case !in.SignatureValid:
			return mcp.NewToolResultError("Cannot revoke: this token was not signed by this server"), nil
		case id == "":
			return mcp.NewToolResultError("Cannot revoke: the token has no jti claim"), nil
		}
		jti = id
	}

	var res RevokeResult
	if clientID != "" {
		if err := auth.ValidateClientID(clientID); err != nil {
			return mcp.NewToolResultError(err.Error()), nil
		}
		toks, err := t.deps.Revoker.RevokeClient(ctx, clientID, caller.Subject, reason)
		if err != nil {
			return mcp.NewToolResultError("Cannot revoke: " + err.Error()), nil
		}
		for _, tk := range toks {
			res.Revoked = append(res.Revoked, revokedToken(tk, false))
		}
		text := fmt.Sprintf("Revoked %d token(s) of %q.", len(toks), clientID)
		if len(toks) == 0 {
			text = fmt.Sprintf("%q has no unrevoked tokens; nothing changed.", clientID)
		}
		if res.Revoked == nil {
			res.Revoked = []RevokedToken{}
		}
		return mcp.NewToolResultStructured(res, text), nil
	}

	if len(jti) > 128 {
		return mcp.NewToolResultError("jti is too long"), nil
	}
	tk, already, err := t.deps.Revoker.RevokeJTI(ctx, jti, caller.Subject, reason)
	if errors.Is(err, registry.ErrNotFound) {
		return mcp.NewToolResultError(fmt.Sprintf("Cannot revoke: no token with jti %q in the registry", auth.Clip(jti, 64))), nil
	}
	if err != nil {
		return mcp.NewToolResultError("Cannot revoke: " + err.Error()), nil
	}
	res.Revoked = []RevokedToken{revokedToken(tk, already)}
	text := fmt.Sprintf("Revoked token %s of %q; it is refused from now on.", tk.JTI, tk.ClientID)
	if already {
		text = fmt.Sprintf("Token %s of %q was already revoked at %s by %s; nothing changed.", tk.JTI, tk.ClientID, isoTime(tk.RevokedAt), tk.RevokedBy)
	}
	return mcp.NewToolResultStructured(res, text), nil
}

func revokedToken(t registry.Token, already bool) RevokedToken {
	return RevokedToken{
		JTI: t.JTI, ClientID: t.ClientID, RevokedAt: isoTime(t.RevokedAt), RevokedBy: t.RevokedBy,
		Reason: t.RevokeReason, AlreadyFound: already,
	}
}

func describeGiven(given []string) string {
	if len(given) == 0 {
		return "none"
	}
	return strings.Join(given, ", ")
}
