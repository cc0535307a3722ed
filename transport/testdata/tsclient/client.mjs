// Interop test client for mcpauth, built on the official MCP TypeScript SDK.
//
// Usage: MCP_TOKEN=<jwt> [CALL_ISSUE=1] node client.mjs <url> <sse|streamable>
//    or: MCP_HEADERS='{"Authorization":"Bearer <jwt>"}' node client.mjs <url> <sse|streamable>
//
// Prints exactly one JSON line to stdout:
//   {"protocolVersion": ..., "tools": [...], "whoami": <CallToolResult>, "issue": <CallToolResult|null>}
// Exit codes: 0 success, 1 error (message on stderr), 2 overall timeout (20s).
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { run } from './run.mjs';

async function main() {
  const [urlArg, mode] = process.argv.slice(2);
  if (!urlArg || (mode !== 'sse' && mode !== 'streamable')) {
    throw new Error('usage: node client.mjs <url> <sse|streamable>');
  }
  const token = process.env.MCP_TOKEN ?? '';
  const url = new URL(urlArg);
  // MCP_HEADERS (a JSON object, as in a pasted client config) wins over
  // MCP_TOKEN.
  let authHeader = `Bearer ${token}`;
  if (process.env.MCP_HEADERS) {
    const headers = JSON.parse(process.env.MCP_HEADERS);
    if (typeof headers.Authorization !== 'string') {
      throw new Error('MCP_HEADERS has no Authorization header');
    }
    authHeader = headers.Authorization;
  }

  let transport;
  if (mode === 'sse') {
    // In SDK 1.32.2, SSEClientTransport builds headers for BOTH the GET event
    // stream and the POST messages from requestInit.headers (_commonHeaders()).
    // The GET goes through eventSourceInit.fetch (if given) with those headers
    // already applied; we also set Authorization there explicitly so the GET
    // carries it regardless of how the SDK merges headers.
    transport = new SSEClientTransport(url, {
      requestInit: { headers: { Authorization: authHeader } },
      eventSourceInit: {
        fetch: (input, init) => {
          const headers = new Headers(init?.headers);
          headers.set('Authorization', authHeader);
          return fetch(input, { ...init, headers });
        },
      },
    });
  } else {
    transport = new StreamableHTTPClientTransport(url, {
      requestInit: { headers: { Authorization: authHeader } },
    });
  }

  // Capture the negotiated protocol version: Client.connect() calls
  // transport.setProtocolVersion(result.protocolVersion) after initialize.
  let protocolVersion = null;
  if (typeof transport.setProtocolVersion === 'function') {
    const orig = transport.setProtocolVersion.bind(transport);
    transport.setProtocolVersion = (v) => {
      protocolVersion = v;
      return orig(v);
    };
  }

  const client = new Client({ name: 'mcpauth-tsclient', version: '0.0.0' });
  await client.connect(transport);

  const listed = await client.listTools();
  const tools = listed.tools.map((t) => t.name);

  const whoami = await client.callTool({ name: 'whoami', arguments: {} });

  let issue = null;
  if (process.env.CALL_ISSUE === '1') {
    issue = await client.callTool({
      name: 'issue_token',
      arguments: { client_id: 'ts-client', expires_in: '1h' },
    });
  }

  const out = JSON.stringify({ protocolVersion, tools, whoami, issue });
  await new Promise((resolve) => process.stdout.write(out + '\n', resolve));

  try {
    await client.close();
  } catch {
    // ignore close errors; the result has already been printed
  }
}

run(main, 20_000);
