package main

// The Go peers of the load test (issue #15): the bench binary re-executes
// itself as
//
//	bench peer mcpgo -addr A -result FILE
//	bench peer gosdk -addr A -result FILE -secret-file F
//
// "mcpgo" is a bare mcp-go server (the version mcpauth builds on) with the
// same whoami tool and no mcpauth code: Streamable HTTP at /mcp and mcp-go's
// legacy SSEServer at /sse + /message, no authentication — the true
// ceiling. "gosdk" is the official Go SDK (github.com/modelcontextprotocol/
// go-sdk) with its Streamable HTTP handler at /mcp and its SSE handler at
// /sse, both wrapped in auth.RequireBearerToken with a verifier that checks
// mcpauth's HS256 tokens with golang-jwt v5: what a Go user would otherwise
// pick. Both answer whoami with exactly the text and structured content
// mcpauth's whoami returned for the bench token (FILE holds that result,
// fetched from mcpauth once per run); the result is decoded once and a
// fresh one is built for every call, so it is encoded per call as mcpauth
// encodes its own.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
	mcpgoserver "github.com/mark3labs/mcp-go/server"
	sdkauth "github.com/modelcontextprotocol/go-sdk/auth"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// Names of the Go peers in the load table (and the prefixes the report
// looks them up by).
const (
	bareName  = "bare mcp-go v1.2.1 (no auth)"
	gosdkName = "Go SDK v1.8.0 (RequireBearerToken)"
)

// whoamiResult has the fields and JSON tags of tools.WhoamiResult (copied,
// so the bare peer runs no mcpauth code).
type whoamiResult struct {
	ClientID  string   `json:"client_id"`
	Scopes    []string `json:"scopes"`
	JTI       string   `json:"jti,omitempty"`
	Issuer    string   `json:"issuer,omitempty"`
	ExpiresAt *string  `json:"expires_at"`
	Admin     bool     `json:"admin"`
	MayCall   []string `json:"may_call"`
}

// fresh returns a copy with its own slices, as mcpauth builds one per call.
func (w whoamiResult) fresh() whoamiResult {
	c := w
	c.Scopes = append([]string{}, w.Scopes...)
	c.MayCall = append([]string{}, w.MayCall...)
	if w.ExpiresAt != nil {
		s := *w.ExpiresAt
		c.ExpiresAt = &s
	}
	return c
}

// whoamiFixture is mcpauth's whoami result as the peers replay it.
type whoamiFixture struct {
	text       string
	structured whoamiResult
}

func loadWhoamiFixture(path string) (whoamiFixture, error) {
	var f whoamiFixture
	b, err := os.ReadFile(path)
	if err != nil {
		return f, err
	}
	var res struct {
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
		StructuredContent json.RawMessage `json:"structuredContent"`
	}
	if err := json.Unmarshal(b, &res); err != nil {
		return f, fmt.Errorf("%s: %w", path, err)
	}
	if len(res.Content) != 1 || res.Content[0].Type != "text" || len(res.StructuredContent) == 0 {
		return f, fmt.Errorf("%s: want one text content and structured content: %.300s", path, b)
	}
	dec := json.NewDecoder(bytes.NewReader(res.StructuredContent))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f.structured); err != nil {
		return f, fmt.Errorf("%s: structured content: %w", path, err)
	}
	f.text = res.Content[0].Text
	return f, nil
}

func servePeer(kind string, args []string) error {
	fs := flag.NewFlagSet("peer "+kind, flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	result := fs.String("result", "", "file holding mcpauth's whoami result (JSON) to answer with")
	secretFile := fs.String("secret-file", "", "file holding the HS256 secret (gosdk)")
	issuer := fs.String("issuer", "mcpauth", "required iss claim (gosdk)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	fix, err := loadWhoamiFixture(*result)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	switch kind {
	case "mcpgo":
		s := mcpgoserver.NewMCPServer("bench-bare", "1", mcpgoserver.WithToolCapabilities(false), mcpgoserver.WithRecovery())
		s.AddTool(mcpgo.NewTool("whoami",
			mcpgo.WithDescription("Show the identity of the token this session uses."),
			mcpgo.WithReadOnlyHintAnnotation(true),
			mcpgo.WithIdempotentHintAnnotation(true),
			mcpgo.WithDestructiveHintAnnotation(false),
			mcpgo.WithOpenWorldHintAnnotation(false),
		), func(context.Context, mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
			return mcpgo.NewToolResultStructured(fix.structured.fresh(), fix.text), nil
		})
		mux.Handle("/mcp", mcpgoserver.NewStreamableHTTPServer(s))
		sse := mcpgoserver.NewSSEServer(s)
		mux.Handle("/sse", sse.SSEHandler())
		mux.Handle("/message", sse.MessageHandler())
	case "gosdk":
		secret, err := os.ReadFile(*secretFile)
		if err != nil {
			return err
		}
		secret = bytes.TrimSpace(secret)
		s := sdk.NewServer(&sdk.Implementation{Name: "bench-gosdk", Version: "1"}, nil)
		s.AddTool(&sdk.Tool{
			Name:        "whoami",
			Description: "Show the identity of the token this session uses.",
			InputSchema: json.RawMessage(`{"type":"object"}`),
			Annotations: &sdk.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true, DestructiveHint: new(false), OpenWorldHint: new(false)},
		}, func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			return &sdk.CallToolResult{
				Content:           []sdk.Content{&sdk.TextContent{Text: fix.text}},
				StructuredContent: fix.structured.fresh(),
			}, nil
		})
		requireAuth := sdkauth.RequireBearerToken(hs256Verifier(secret, *issuer), nil)
		mux.Handle("/mcp", requireAuth(sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return s },
			&sdk.StreamableHTTPOptions{JSONResponse: true})))
		mux.Handle("/sse", requireAuth(sdk.NewSSEHandler(func(*http.Request) *sdk.Server { return s }, nil)))
	default:
		return fmt.Errorf("unknown peer %q (mcpgo or gosdk)", kind)
	}
	return serveUntilStopped(*addr, mux, 2*time.Second)
}

// peerClaims are the claims the Go SDK peer reads from mcpauth's tokens.
type peerClaims struct {
	jwt.RegisteredClaims
	Scope jwt.ClaimStrings `json:"scope,omitempty"`
}

// hs256Verifier checks mcpauth's tokens with golang-jwt v5 as a Go SDK
// user would: HS256 only, the secret, iss, exp required (30 s leeway, as
// mcpauth and the TypeScript peer), nbf/iat, sub and jti present, and a
// revocation set of 1,000 jtis (the size mcpauth's and the TypeScript
// peer's hold in the load test).
func hs256Verifier(secret []byte, issuer string) sdkauth.TokenVerifier {
	revoked := make(map[string]struct{}, 1000)
	for range 1000 {
		var b [16]byte
		_, _ = rand.Read(b[:])
		revoked[hex.EncodeToString(b[:])] = struct{}{}
	}
	parser := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuer(issuer),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(30*time.Second))
	keyFunc := func(*jwt.Token) (any, error) { return secret, nil }
	return func(_ context.Context, token string, _ *http.Request) (*sdkauth.TokenInfo, error) {
		if len(token) > 8<<10 {
			return nil, fmt.Errorf("%w: too large", sdkauth.ErrInvalidToken)
		}
		var c peerClaims
		if _, err := parser.ParseWithClaims(token, &c, keyFunc); err != nil {
			return nil, fmt.Errorf("%w: %v", sdkauth.ErrInvalidToken, err)
		}
		if c.Subject == "" || c.ID == "" {
			return nil, fmt.Errorf("%w: sub and jti required", sdkauth.ErrInvalidToken)
		}
		if _, ok := revoked[c.ID]; ok {
			return nil, fmt.Errorf("%w: revoked", sdkauth.ErrInvalidToken)
		}
		var scopes []string
		for _, s := range c.Scope {
			scopes = append(scopes, strings.Fields(s)...)
		}
		// RequireBearerToken compares Expiration with now without leeway.
		return &sdkauth.TokenInfo{Scopes: scopes, Expiration: c.ExpiresAt.Add(30 * time.Second), UserID: c.Subject}, nil
	}
}

// fetchWhoami calls mcpauth's whoami once with token and writes its result
// (the JSON-RPC "result" member) to path for the Go peers.
func fetchWhoami(ctx context.Context, hc *http.Client, url, token, path string) (json.RawMessage, error) {
	c, err := openStreamable(ctx, hc, url, token)
	if err != nil {
		return nil, err
	}
	defer c.close()
	body, err := c.call(ctx, "whoami", "{}")
	if err != nil {
		return nil, err
	}
	res, err := rpcResult(body)
	if err != nil {
		return nil, err
	}
	return res, os.WriteFile(path, res, 0o600)
}

// rpcResult returns the "result" member of a JSON-RPC response.
func rpcResult(body []byte) (json.RawMessage, error) {
	var resp struct {
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(body, &resp); err != nil || len(resp.Result) == 0 {
		return nil, fmt.Errorf("no JSON-RPC result in %.300s", body)
	}
	return resp.Result, nil
}

// sameResult checks that a peer answers whoami with what mcpauth answered
// (compared as JSON values, so member order does not matter).
func sameResult(ctx context.Context, hc *http.Client, url, token string, want json.RawMessage) error {
	c, err := openStreamable(ctx, hc, url, token)
	if err != nil {
		return err
	}
	defer c.close()
	body, err := c.call(ctx, "whoami", "{}")
	if err != nil {
		return err
	}
	got, err := rpcResult(body)
	if err != nil {
		return err
	}
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		return err
	}
	if err := json.Unmarshal(want, &w); err != nil {
		return err
	}
	if !reflect.DeepEqual(g, w) {
		return fmt.Errorf("whoami differs from mcpauth's:\n got  %s\n want %s", got, want)
	}
	return nil
}

// startGoPeer re-executes the bench binary as `bench peer kind`.
func startGoPeer(ctx context.Context, env *serverEnv, kind, resultFile, cpus string) (*proc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	argv := []string{self, "peer", kind, "-addr", addr, "-result", resultFile}
	if kind == "gosdk" {
		sf := filepath.Join(env.dir, "peer-secret")
		if err := os.WriteFile(sf, []byte(env.secret), 0o600); err != nil {
			return nil, err
		}
		argv = append(argv, "-secret-file", sf)
	}
	penv := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + env.dir}
	return startProc(ctx, "peer-"+kind, argv, penv, env.dir, cpus, "http://"+addr)
}
