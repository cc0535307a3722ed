// Command scopedtools is a Go program that serves tools of its own behind
// mcpauth, each with the scopes it needs: the production setup guide's
// campaigns:read and campaigns:export, in a few lines of mcpauth.New.
//
//	go run ./examples/scopedtools -addr 127.0.0.1:8090
//
// It prints two tokens (a reader's and an exporter's) and serves MCP at
// /mcp and /sse. The reader's tools/list shows list_campaigns only;
// export_campaigns answers the reader with the MCP scope challenge (403
// insufficient_scope, scope="campaigns:export").
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/transport"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "listen address")
	db := flag.String("db", filepath.Join(os.TempDir(), "scopedtools.db"), "registry file")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *addr, *db); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, addr, db string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	secret := make([]byte, 32) // a real deployment keeps its secret
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	srv, err := newServer(ctx, secret, "http://"+ln.Addr().String(), db, logger)
	if err != nil {
		return err
	}
	defer srv.Close()
	for _, scope := range []string{"campaigns:read", "campaigns:export"} {
		tok, err := mint(ctx, srv, "demo-"+scope[len("campaigns:"):], scope)
		if err != nil {
			return err
		}
		fmt.Printf("%s token: %s\n", scope, tok)
	}
	fmt.Printf("MCP at http://%s/mcp (Authorization: Bearer <token>)\n", ln.Addr())
	go srv.Run(ctx)
	return transport.Serve(ctx, ln, srv.HTTP, logger)
}

// newServer is the whole integration: the program's tools, their scopes,
// and mcpauth.New.
func newServer(ctx context.Context, secret []byte, publicURL, db string, logger *slog.Logger) (*mcpauth.Server, error) {
	return mcpauth.New(ctx, mcpauth.Config{
		Secret:      secret,
		PublicURL:   publicURL,
		DatabaseURL: db,
		DefaultDeny: true, // anything without a rule is nobody's
		Logger:      logger,
		Tools: []mcpauth.Tool{
			{Tool: mcp.NewTool("list_campaigns", mcp.WithDescription("List marketing campaigns")),
				Handler: listCampaigns, Scopes: []string{"campaigns:read"}},
			{Tool: mcp.NewTool("export_campaigns", mcp.WithDescription("Export campaigns as CSV")),
				Handler: exportCampaigns, Scopes: []string{"campaigns:export"}},
		},
	})
}

func listCampaigns(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	return mcp.NewToolResultText("spring-sale, black-friday"), nil
}

func exportCampaigns(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	return mcp.NewToolResultText("name,status\nspring-sale,done\nblack-friday,active\n"), nil
}

// mint records and returns a one-day token with scope, as the program's
// own operator.
func mint(ctx context.Context, srv *mcpauth.Server, clientID, scope string) (string, error) {
	op := &auth.Claims{Scope: auth.Scopes{auth.ScopeAdmin}}
	op.Subject = "scopedtools-operator"
	tok, err := srv.Issuer.Issue(ctx, auth.IssueRequest{
		ClientID: clientID, Expiry: auth.Expiry{Duration: 24 * time.Hour}, Scopes: []string{scope}, Caller: op,
	})
	return tok.Token, err
}
