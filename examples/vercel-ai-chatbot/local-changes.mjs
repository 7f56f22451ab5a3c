// The local changes that let vercel/ai-chatbot (at the pinned commit) run on a
// machine without the AI Gateway, Google Fonts or https, against chat-harness's
// mock provider. Each change names the exact text it replaces and fails loudly
// when that text is missing (a different commit): nothing is patched blindly.
// Run from the checkout's root: node local-changes.mjs. Applying twice is a no-op.

import { readFileSync, writeFileSync } from "node:fs";

const MARK = "/* chat-harness local change */";

function edit(file, from, to) {
  const text = readFileSync(file, "utf8");
  if (text.includes(MARK + " " + to)) return console.log(`  ${file}: already changed`);
  if (!text.includes(from)) {
    console.error(`${file}: the text to replace is not there (another commit?):\n  ${from}`);
    process.exit(1);
  }
  writeFileSync(file, text.split(from).join(MARK + " " + to));
  console.log(`  ${file}: changed`);
}

// 1. The model provider: an OpenAI-compatible endpoint (OPENAI_COMPATIBLE_BASE_URL,
//    e.g. the mock's http://127.0.0.1:N/api/v1) instead of the Vercel AI Gateway.
//    The rest of providers.ts keeps calling gateway.languageModel(id).
edit(
  "lib/ai/providers.ts",
  'import { gateway } from "@ai-sdk/gateway";',
  'import { createOpenAICompatible } from "@ai-sdk/openai-compatible";\n' +
    "const gateway = createOpenAICompatible({\n" +
    '  name: "openai-compatible",\n' +
    '  baseURL: process.env.OPENAI_COMPATIBLE_BASE_URL ?? "http://127.0.0.1:9100/api/v1",\n' +
    "  apiKey: process.env.OPENAI_COMPATIBLE_API_KEY,\n" +
    "  includeUsage: true,\n" +
    "});",
);

// 2. next/font/google downloads the Geist fonts at build time: the system fonts instead.
edit(
  "app/layout.tsx",
  'import { Geist, Geist_Mono } from "next/font/google";',
  "const Geist = (_options: object) => ({ variable: \"\", className: \"\" });\nconst Geist_Mono = Geist;",
);

// 3. Over plain http (next start, no TLS proxy) Auth.js sets the session cookie
//    without the __Secure- prefix, but proxy.ts and the guest route look for the
//    secure one whenever NODE_ENV is not "development": every call becomes a
//    307 to /api/auth/guest, forever. Look for the cookie the protocol implies.
edit("proxy.ts", "secureCookie: !isDevelopmentEnvironment,", 'secureCookie: request.nextUrl.protocol === "https:" && !isDevelopmentEnvironment,');
edit(
  "app/(auth)/api/auth/guest/route.ts",
  "secureCookie: !isDevelopmentEnvironment,",
  'secureCookie: new URL(request.url).protocol === "https:" && !isDevelopmentEnvironment,',
);
