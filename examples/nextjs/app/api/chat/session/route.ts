// GET reads one session, POST renames it (C-SES-3).
import { authenticate } from "@/lib/auth";
import { pool } from "@/lib/db";
import { notFound } from "@/lib/errors";
import { json, readObject, route } from "@/lib/http";
import { findSession, parseTitle, renameSession, sessionId } from "@/lib/sessions";

export const dynamic = "force-dynamic";

export const { GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS } = route({
  GET: async (req) => {
    const userId = await authenticate(req);
    const id = sessionId(new URL(req.url).searchParams.get("id"), "id");
    const session = await findSession(pool(), userId, id);
    if (!session) throw notFound(`Session ${id} not found`);
    return json({ session });
  },
  POST: async (req) => {
    const userId = await authenticate(req);
    const body = await readObject(req);
    const id = sessionId(body.id, "id");
    const title = parseTitle(body, "title", true)!;
    const session = await renameSession(userId, id, title);
    if (!session) throw notFound(`Session ${id} not found`);
    return json({ session, success: true });
  },
});
