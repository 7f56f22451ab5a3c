// POST /api/chat: one turn (lib/chat.ts). DELETE /api/chat?id=: one chat of the caller.

import { userId } from "@/lib/auth";
import { postBody, postChat } from "@/lib/chat";
import * as db from "@/lib/db";
import { answer, badRequest, forbidden, notFound } from "@/lib/errors";

export const dynamic = "force-dynamic";

export async function POST(req: Request): Promise<Response> {
  return answer(async () => {
    const user = await userId(req);
    let json: unknown;
    try {
      json = await req.json();
    } catch {
      throw badRequest("The body must be JSON.");
    }
    const parsed = postBody.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw badRequest(`${issue.path.join(".") || "body"}: ${issue.message}`);
    }
    await db.ensureSchema();
    return postChat(parsed.data, user);
  });
}

export async function DELETE(req: Request): Promise<Response> {
  return answer(async () => {
    const user = await userId(req);
    const id = new URL(req.url).searchParams.get("id") ?? "";
    if (!/^[0-9a-f-]{36}$/i.test(id)) throw badRequest("id: a chat UUID is required.");
    await db.ensureSchema();
    const chat = await db.getChat(id);
    if (!chat) throw notFound();
    if (chat.userId !== user) throw forbidden();
    return Response.json(await db.deleteChat(id));
  });
}
