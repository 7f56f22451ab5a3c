// POST /api/chat/stream: the completion streamed as text/plain (C-STREAM-1..3).
import { authenticate } from "@/lib/auth";
import { answerMeta, parseChatRequest, providerMessages, triggerId } from "@/lib/chat";
import { readObject, route } from "@/lib/http";
import { openStream } from "@/lib/provider";
import { firstText, textStream } from "@/lib/stream";

export const dynamic = "force-dynamic";

export const { GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS } = route({
  POST: async (req) => {
    const started = performance.now();
    await authenticate(req);
    const chat = parseChatRequest(await readObject(req));
    const trigger = triggerId(chat);
    const provider = await openStream(chat.model, providerMessages(chat, trigger));
    const head = await firstText(provider);
    const body = textStream(provider, head, (text) =>
      answerMeta(chat, trigger, started, { content: text, usage: provider.usage, id: provider.id, model: provider.model }),
    );
    return new Response(body, {
      headers: {
        "Content-Type": "text/plain; charset=utf-8",
        "Cache-Control": "no-cache, no-transform",
        "X-Accel-Buffering": "no",
      },
    });
  },
});
