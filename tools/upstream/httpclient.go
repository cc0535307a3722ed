package upstream

import "net/http"

// maxIdlePerUpstream is how many idle connections to one HTTP upstream
// are kept for reuse: enough for the calls in flight at once.
const maxIdlePerUpstream = 128

// newHTTPClient is the HTTP client of u's mcp-go transport.
//
// mcp-go's default (http.Client{} on http.DefaultTransport) keeps only 2
// idle connections per host, so with more than 2 calls in flight most
// relayed calls closed their connection afterwards and the next call paid
// for a new one (handshake, a fresh net/http server connection on the
// upstream, a socket in TIME_WAIT): the gateway benchmark showed one new
// connection per call at 16 concurrent callers. Everything else is
// http.DefaultTransport's (proxy from the environment, TLS, HTTP/2).
func newHTTPClient(u *Upstream) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = maxIdlePerUpstream
	tr.MaxIdleConnsPerHost = maxIdlePerUpstream
	return &http.Client{Transport: credentials{base: tr, u: u}}
}

// credentials gives every request to the upstream its credentials: mcp-go
// v1.2.1 sends the session's closing DELETE with neither the configured
// headers nor the header func's, so an upstream that checks them refused
// it and kept the session until it expired. A request that lacks the
// entry's headers, or (callerToken) an Authorization, gets them here; one
// that has them is passed on untouched.
type credentials struct {
	base http.RoundTripper
	u    *Upstream
}

func (c credentials) RoundTrip(r *http.Request) (*http.Response, error) {
	e := c.u.entry
	needAuth := e.CallerToken != nil && r.Header.Get("Authorization") == ""
	missing := needAuth
	for k := range e.Headers {
		missing = missing || r.Header.Get(k) == ""
	}
	if !missing {
		return c.base.RoundTrip(r)
	}
	r = r.Clone(r.Context())
	for k, v := range e.Headers {
		if r.Header.Get(k) == "" {
			r.Header.Set(k, v)
		}
	}
	if needAuth {
		for k, v := range c.u.authHeader(r.Context()) {
			r.Header.Set(k, v)
		}
	}
	return c.base.RoundTrip(r)
}
