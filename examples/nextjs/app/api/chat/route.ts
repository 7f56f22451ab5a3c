// POST /api/chat: one completion, nothing stored (C-CHAT-1..6).
import { authenticate } from "@/lib/auth";
import { answerMeta, parseChatRequest, providerMessages, triggerId } from "@/lib/chat";
import { json, readObject, route } from "@/lib/http";
import { complete } from "@/lib/provider";

export const dynamic = "force-dynamic";

export const { GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS } = route({
  POST: async (req) => {
    const started = performance.now();
    await authenticate(req);
    const chat = parseChatRequest(await readObject(req));
    const trigger = triggerId(chat);
    const answer = await complete(chat.model, providerMessages(chat, trigger));
    const data = answerMeta(chat, trigger, started, answer);
    return json({ data, timestamp: data.timestamp });
  },
});
