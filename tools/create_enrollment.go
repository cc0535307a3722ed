package tools

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpauth/mcpauth/auth"
)

func createEnrollmentTool() mcp.Tool {
	return mcp.NewTool("create_enrollment",
		mcp.WithDescription("Create a one-time enrollment code (admin only) that lets an MCP client sign in by itself (OAuth): "+
			"the person adding this server to their client types the code on the consent page. The client's tokens carry "+
			"the given name as client id and at most the given scopes."),
		mcp.WithString("name", mcp.Required(), mcp.Description("Client id the signed-in client's tokens will carry, e.g. claude-ai (1-128 of A-Z a-z 0-9 . _ -)."),
			mcp.MinLength(1), mcp.MaxLength(auth.MaxClientIDLen)),
		mcp.WithArray("scopes", mcp.WithStringItems(), mcp.Description(`Scopes the client may be granted, e.g. ["tools:call"]; only scopes you hold.`)),
		mcp.WithString("expires_in", mcp.Description(`How long the code is valid, e.g. "15m" (default) up to "24h".`)),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithOpenWorldHintAnnotation(false),
	)
}

// EnrollmentResult is create_enrollment's structured content.
type EnrollmentResult struct {
	Code      string   `json:"code"`
	Name      string   `json:"name"`
	Scopes    []string `json:"scopes"`
	ExpiresAt string   `json:"expires_at"`
	ServerURL string   `json:"server_url"`
}

func (t *Toolset) createEnrollment(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	a, err := parseArgs(req, "name", "scopes", "expires_in")
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	name, ok, err := a.Str("name")
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	if !ok {
		return mcp.NewToolResultError(`argument "name" is required`), nil
	}
	scopes, err := a.Strs("scopes")
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	var ttl time.Duration
	if s, ok, err := a.Str("expires_in"); err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	} else if ok {
		e, err := auth.ParseExpiry(s)
		if err != nil || e.Never {
			return mcp.NewToolResultError(fmt.Sprintf("expires_in: %v", orNever(err))), nil
		}
		ttl = e.Duration
	}
	caller, _ := auth.ClaimsFrom(ctx)
	e, err := t.deps.OAuth.CreateEnrollment(ctx, caller, name, scopes, ttl)
	if err != nil {
		return mcp.NewToolResultError("Cannot create the enrollment: " + err.Error()), nil
	}
	url := strings.TrimRight(t.deps.PublicURL, "/") + "/mcp"
	res := EnrollmentResult{Code: e.Code, Name: e.Name, Scopes: append([]string{}, e.Scopes...), ExpiresAt: isoTime(e.ExpiresAt), ServerURL: url}
	text := fmt.Sprintf("Enrollment code for %q: %s (single use, valid until %s).\n\n"+
		"Add %s as a custom connector in the MCP client; when its sign-in page asks, type the code. "+
		"The client's tokens will carry client id %q with scopes [%s].", e.Name, e.Code, res.ExpiresAt, url, e.Name, strings.Join(e.Scopes, " "))
	return mcp.NewToolResultStructured(res, text), nil
}

func orNever(err error) error {
	if err == nil {
		return fmt.Errorf(`an enrollment code cannot live "never"`)
	}
	return err
}
