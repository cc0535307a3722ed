package transport

import (
	"strings"
	"testing"
)

// A refused body is described in JSON-RPC terms: the words of the tool
// argument decoder ("arguments must be a JSON object") belong to tool
// arguments only.
func TestCheckJSONRPCNamesWhatIsWrongWithTheBody(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`42`, "invalid JSON-RPC message: not a JSON object"},
		{`"ping"`, "invalid JSON-RPC message: not a JSON object"},
		{`null`, "invalid JSON-RPC message: not a JSON object"},
		{`{"jsonrpc":"2.0","id":1,"ID":2,"method":"ping"}`, `invalid JSON-RPC message: member "ID" is given more than once`},
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","NAME":"b"}}`, `invalid params: member "NAME" is given more than once`},
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"x":1,"x":2}}}`, `invalid arguments: argument "x" is given more than once`},
		{`{"jsonrpc":"2.0","id":1,"method":"ping"`, "the body is not valid JSON"},
	} {
		_, err := checkJSONRPC([]byte(tc.body))
		if err == nil || err.Error() != tc.want {
			t.Errorf("checkJSONRPC(%s) = %v, want %q", tc.body, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "arguments must be") {
			t.Errorf("checkJSONRPC(%s) speaks of tool arguments: %v", tc.body, err)
		}
	}
}
