// WebSocket interop client for mcpauth, built on the official MCP
// TypeScript SDK's WebSocketClientTransport (subprotocol "mcp").
//
// Usage: MCP_TOKEN=<jwt> node [--experimental-websocket] ws.mjs <ws-url> [params|headers]
//
// params (the default): the SDK's transport is the WHATWG WebSocket, which
// cannot set request headers, so the token travels as the production setup
// document says: inside each JSON-RPC request's params.auth.token (added
// here by wrapping transport.send; notifications go without it).
// headers: the token goes in the upgrade request's Authorization header;
// the SDK's transport runs on the `ws` package's WebSocket (installed as the
// global WebSocket, with the header), as a Node program would.
//
// Prints exactly one JSON line to stdout:
//   {"protocolVersion": ..., "tools": [...], "whoami": <CallToolResult>}
// Exit codes: 0 success, 1 error (message on stderr), 2 overall timeout (20s).
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { WebSocketClientTransport } from '@modelcontextprotocol/sdk/client/websocket.js';
import NodeWebSocket from 'ws';
import { run } from './run.mjs';

async function main() {
  const [urlArg, mode = 'params'] = process.argv.slice(2);
  if (!urlArg) {
    throw new Error('usage: node ws.mjs <ws-url> [params|headers]');
  }
  const token = process.env.MCP_TOKEN ?? '';
  if (mode === 'headers') {
    globalThis.WebSocket = class extends NodeWebSocket {
      constructor(url, protocols) {
        super(url, protocols, { headers: { Authorization: `Bearer ${token}` } });
      }
    };
  } else if (mode !== 'params') {
    throw new Error(`unknown mode ${mode}`);
  }
  if (typeof globalThis.WebSocket !== 'function') {
    throw new Error('no global WebSocket: run node with --experimental-websocket (Node 20) or use Node 22+');
  }
  const transport = new WebSocketClientTransport(new URL(urlArg));
  if (mode === 'params') {
    const send = transport.send.bind(transport);
    transport.send = (message) => {
      if (token && 'method' in message && 'id' in message) {
        message = { ...message, params: { ...(message.params ?? {}), auth: { token } } };
      }
      return send(message);
    };
  }
  // Client.connect() reports the negotiated version to a transport that
  // takes it (the WebSocket one does not, so it is added here).
  let protocolVersion = null;
  transport.setProtocolVersion = (v) => {
    protocolVersion = v;
  };

  const client = new Client({ name: 'mcpauth-tsclient-ws', version: '0.0.0' });
  await client.connect(transport);

  const listed = await client.listTools();
  const tools = listed.tools.map((t) => t.name);
  const whoami = await client.callTool({ name: 'whoami', arguments: {} });

  const out = JSON.stringify({ protocolVersion, tools, whoami });
  await new Promise((resolve) => process.stdout.write(out + '\n', resolve));
  try {
    await client.close();
  } catch {
    // ignore close errors; the result has already been printed
  }
}

run(main, 20_000);
