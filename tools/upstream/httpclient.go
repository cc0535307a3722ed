package upstream

import "net/http"

// maxIdlePerUpstream is how many idle connections to one HTTP upstream
// are kept for reuse: enough for the calls in flight at once.
const maxIdlePerUpstream = 128

// newHTTPClient is the HTTP client of one upstream's mcp-go transport.
// mcp-go's default (http.Client{} on http.DefaultTransport) keeps only 2
// idle connections per host, so with more than 2 calls in flight most
// relayed calls closed their connection afterwards and the next call paid
// for a new one (handshake, a fresh net/http server connection on the
// upstream, a socket in TIME_WAIT): the gateway benchmark showed one new
// connection per call at 16 concurrent callers. Everything else is
// http.DefaultTransport's (proxy from the environment, TLS, HTTP/2).
func newHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = maxIdlePerUpstream
	tr.MaxIdleConnsPerHost = maxIdlePerUpstream
	return &http.Client{Transport: tr}
}
