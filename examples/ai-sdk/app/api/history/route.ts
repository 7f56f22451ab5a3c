// GET /api/history?limit=N: the caller's chats, newest first, as ai-chatbot
// lists them ({chats, hasMore}).

import { userId } from "@/lib/auth";
import * as db from "@/lib/db";
import { answer, badRequest } from "@/lib/errors";

export const dynamic = "force-dynamic";

export async function GET(req: Request): Promise<Response> {
  return answer(async () => {
    const user = await userId(req);
    const text = new URL(req.url).searchParams.get("limit") ?? "20";
    const limit = Number(text);
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) throw badRequest("limit: 1..100.");
    await db.ensureSchema();
    return Response.json(await db.listChats(user, limit));
  });
}
