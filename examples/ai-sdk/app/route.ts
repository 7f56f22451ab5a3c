// GET /: where the guest login redirects to. No UI: this app is an API.

export function GET(): Response {
  return new Response("chat-harness examples/ai-sdk: POST /api/chat\n", {
    headers: { "content-type": "text/plain; charset=utf-8" },
  });
}
