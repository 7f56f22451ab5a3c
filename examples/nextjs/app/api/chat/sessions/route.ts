// GET lists the caller's sessions, POST creates one, DELETE removes one (C-SES-1, -2, -4).
import { authenticate } from "@/lib/auth";
import { pool } from "@/lib/db";
import { conflict, notFound } from "@/lib/errors";
import { json, readObject, route } from "@/lib/http";
import { DEFAULT_TITLE, createSession, deleteSession, listSessions, parseTitle, sessionId } from "@/lib/sessions";

export const dynamic = "force-dynamic";

export const { GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS } = route({
  GET: async (req) => {
    const sessions = await listSessions(await authenticate(req));
    return json({ sessions, count: sessions.length });
  },
  POST: async (req) => {
    const userId = await authenticate(req);
    const body = await readObject(req);
    const id = sessionId(body.id, "id");
    const title = parseTitle(body, "title", false) ?? DEFAULT_TITLE;
    const result = await createSession(pool(), userId, id, title);
    if (!result.ownerIsCaller) throw conflict(`Session ${id} already exists`, "Choose another id");
    return json({ session: result.session, success: true }, result.created ? 201 : 200);
  },
  DELETE: async (req) => {
    const userId = await authenticate(req);
    const id = sessionId(new URL(req.url).searchParams.get("id"), "id");
    if (!(await deleteSession(userId, id))) throw notFound(`Session ${id} not found`);
    return json({ success: true });
  },
});
