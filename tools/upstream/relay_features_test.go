package upstream

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

func complete(ctx context.Context, c *client.Client, ref any, arg string, value string, cctx map[string]string) (*mcp.CompleteResult, error) {
	req := mcp.CompleteRequest{}
	req.Params.Ref = ref
	req.Params.Argument = mcp.CompleteArgument{Name: arg, Value: value}
	req.Params.Context = mcp.CompleteContext{Arguments: cctx}
	return c.Complete(ctx, req)
}

func TestCompletionsGoToTheOwningUpstreamUnprefixed(t *testing.T) {
	other := stdioEntry("other")
	other.Env[schemeEnv] = "other"
	_, c, _ := startGateway(t, Options{}, stdioEntry("go"), other)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if caps := initialize(t, c); caps.Completions == nil {
		t.Fatal("completions not advertised though the upstreams offer them")
	}
	res, err := complete(ctx, c, mcp.PromptReference{Type: "ref/prompt", Name: "other__greet"}, "name", "an", map[string]string{"x": "y"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "prompt greet name=an map[x:y]"; len(res.Completion.Values) != 1 || res.Completion.Values[0] != want {
		t.Fatalf("prompt completion = %v, want [%s]", res.Completion.Values, want)
	}
	// A resource template keeps its URI, which names its owner.
	res, err = complete(ctx, c, mcp.ResourceReference{Type: "ref/resource", URI: "other://items/{id}"}, "id", "4", nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := "resource other://items/{id} id=4"; len(res.Completion.Values) != 1 || res.Completion.Values[0] != want {
		t.Fatalf("resource completion = %v, want [%s]", res.Completion.Values, want)
	}
	// A name no upstream serves is an error, not an empty answer.
	if _, err := complete(ctx, c, mcp.PromptReference{Type: "ref/prompt", Name: "greet"}, "name", "", nil); err == nil {
		t.Fatal("completing an unprefixed name went through")
	}
}

func TestCompletionsAreAdvertisedOnlyWhenAnUpstreamOffersThem(t *testing.T) {
	e := stdioEntry("plain")
	e.Env[noCompletionsEnv] = "1"
	_, c, _ := startGateway(t, Options{}, e)
	if caps := initialize(t, c); caps.Completions != nil {
		t.Fatal("completions advertised though no upstream offers them")
	}
	// An HTTP upstream declares them the same way.
	up := server.NewMCPServer("http-up", "1", server.WithCompletions(), server.WithPromptCapabilities(false))
	srv := httptest.NewServer(server.NewStreamableHTTPServer(up))
	t.Cleanup(srv.Close)
	_, c2, _ := startGateway(t, Options{}, Entry{Name: "h", URL: srv.URL + "/mcp"})
	if caps := initialize(t, c2); caps.Completions == nil {
		t.Fatal("completions not advertised for an HTTP upstream that offers them")
	}
}

// initialize returns the capabilities the gateway's server declares.
func initialize(t *testing.T, c *client.Client) mcp.ServerCapabilities {
	t.Helper()
	return c.GetServerCapabilities()
}

func TestCompletionsFollowThePolicy(t *testing.T) {
	g, _, _ := startGateway(t, Options{Access: prefixAccess{}}, stdioEntry("go"))
	url := serveCallers(t, gatewayServer(g))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ref := mcp.PromptReference{Type: "ref/prompt", Name: "go__greet"}
	if _, err := complete(ctx, caller(t, url, "go"), ref, "name", "a", nil); err != nil {
		t.Fatalf("a caller who may use go__greet: %v", err)
	}
	if _, err := complete(ctx, caller(t, url, "other"), ref, "name", "a", nil); err == nil {
		t.Fatal("a caller who may not use go__greet got its completions")
	}
	tmpl := mcp.ResourceReference{Type: "ref/resource", URI: "test://items/{id}"}
	if _, err := complete(ctx, caller(t, url, "go"), tmpl, "id", "1", nil); err == nil {
		t.Fatal("a caller who may not use the template got its completions")
	}
}
