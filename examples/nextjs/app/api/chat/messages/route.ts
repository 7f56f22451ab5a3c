// POST /api/chat/messages stores a batch; GET reads a conversation (section 5).
import { authenticate } from "@/lib/auth";
import { json, readObject, route } from "@/lib/http";
import { parseStoreRequest, readMessages, storeMessages } from "@/lib/messages";

export const dynamic = "force-dynamic";

export const { GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS } = route({
  GET: async (req) => {
    const userId = await authenticate(req);
    return json(await readMessages(userId, new URL(req.url).searchParams));
  },
  POST: async (req) => {
    const userId = await authenticate(req);
    const batch = parseStoreRequest(await readObject(req));
    const { messages } = await storeMessages(userId, batch);
    return json({ messages, count: messages.length, success: true }, 201);
  },
});
