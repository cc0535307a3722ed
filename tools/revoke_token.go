package tools

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/auth/registry"
	"github.com/mcpauth/mcpauth/internal/untrusted"
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
	a, refused := parseRevokeArgs(req)
	if refused != nil {
		return refused, nil
	}
	caller, _ := auth.ClaimsFrom(ctx)
	if a.token != "" {
		if a.jti, refused = t.tokenJTI(a.token); refused != nil {
			return refused, nil
		}
	}
	if a.clientID != "" {
		return t.revokeClient(ctx, caller, a.clientID, a.reason), nil
	}
	return t.revokeJTI(ctx, caller, a.jti, a.reason), nil
}

// revokeArgs are revoke_token's arguments, trimmed: exactly one of jti,
// token and clientID is set.
type revokeArgs struct{ jti, token, clientID, reason string }

// parseRevokeArgs reads and checks the arguments, or answers why not.
func parseRevokeArgs(req mcp.CallToolRequest) (revokeArgs, *mcp.CallToolResult) {
	a, err := parseArgs(req, "jti", "token", "client_id", "reason")
	if err != nil {
		return revokeArgs{}, mcp.NewToolResultError(err.Error())
	}
	var vals [4]string
	var given []string
	for i, name := range []string{"jti", "token", "client_id", "reason"} {
		v, ok, err := a.Str(name)
		if err != nil {
			return revokeArgs{}, mcp.NewToolResultError(err.Error())
		}
		vals[i] = strings.TrimSpace(v)
		if ok && vals[i] != "" && i < 3 {
			given = append(given, name)
		}
	}
	out := revokeArgs{jti: vals[0], token: vals[1], clientID: vals[2], reason: vals[3]}
	if len(given) != 1 {
		return revokeArgs{}, mcp.NewToolResultError("Give exactly one of jti, token or client_id (got " + describeGiven(given) + ")")
	}
	if len(out.reason) > maxReasonLen {
		return revokeArgs{}, mcp.NewToolResultError(fmt.Sprintf("reason is longer than %d characters", maxReasonLen))
	}
	for _, r := range out.reason {
		if r < 0x20 || r == 0x7f {
			return revokeArgs{}, mcp.NewToolResultError("reason must not contain control characters")
		}
	}
	return out, nil
}

// tokenJTI is the jti of a token this server signed (with or without
// "Bearer "), or the answer why it cannot be revoked.
func (t *Toolset) tokenJTI(token string) (string, *mcp.CallToolResult) {
	if len(token) > 7 && strings.EqualFold(token[:7], "bearer ") {
		token = strings.TrimSpace(token[7:])
	}
	in := t.deps.Inspector.Inspect(token)
	id := in.JTI
	switch {
	case !in.Decodable:
		return "", mcp.NewToolResultError("Cannot revoke: not a token (" + in.Reason + ")")
	case !in.SignatureValid:
		return "", mcp.NewToolResultError("Cannot revoke: this token was not signed by this server")
	case id == "":
		return "", mcp.NewToolResultError("Cannot revoke: the token has no jti claim")
	}
	return id, nil
}

// revokeClient revokes every token of clientID.
func (t *Toolset) revokeClient(ctx context.Context, caller *auth.Claims, clientID, reason string) *mcp.CallToolResult {
	if err := auth.ValidateClientID(clientID); err != nil {
		return mcp.NewToolResultError(err.Error())
	}
	toks, err := t.deps.Revoker.RevokeClient(ctx, clientID, caller.Subject, reason)
	if err != nil {
		return mcp.NewToolResultError("Cannot revoke: " + err.Error())
	}
	res := RevokeResult{Revoked: []RevokedToken{}}
	for _, tk := range toks {
		res.Revoked = append(res.Revoked, revokedToken(tk, false))
	}
	text := fmt.Sprintf("Revoked %d token(s) of %q.", len(toks), clientID)
	if len(toks) == 0 {
		text = fmt.Sprintf("%q has no unrevoked tokens; nothing changed.", clientID)
	}
	return mcp.NewToolResultStructured(res, text)
}

// revokeJTI revokes one token by its id.
func (t *Toolset) revokeJTI(ctx context.Context, caller *auth.Claims, jti, reason string) *mcp.CallToolResult {
	if len(jti) > 128 {
		return mcp.NewToolResultError("jti is too long")
	}
	tk, already, err := t.deps.Revoker.RevokeJTI(ctx, jti, caller.Subject, reason)
	if errors.Is(err, registry.ErrNotFound) {
		return mcp.NewToolResultError(fmt.Sprintf("Cannot revoke: no token with jti %q in the registry", untrusted.Clip(jti, 64)))
	}
	if err != nil {
		return mcp.NewToolResultError("Cannot revoke: " + err.Error())
	}
	res := RevokeResult{Revoked: []RevokedToken{revokedToken(tk, already)}}
	text := fmt.Sprintf("Revoked token %s of %q; it is refused from now on.", tk.JTI, tk.ClientID)
	if already {
		text = fmt.Sprintf("Token %s of %q was already revoked at %s by %s; nothing changed.", tk.JTI, tk.ClientID, isoTime(tk.RevokedAt), tk.RevokedBy)
	}
	return mcp.NewToolResultStructured(res, text)
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
