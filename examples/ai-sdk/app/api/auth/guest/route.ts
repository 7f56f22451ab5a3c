// GET /api/auth/guest[?redirectUrl=...]: a new guest user and its session
// cookie, then a redirect (307) to redirectUrl (default "/"), as in ai-chatbot.

import { guestSessionCookie } from "@/lib/auth";
import * as db from "@/lib/db";
import { answer } from "@/lib/errors";

export const dynamic = "force-dynamic";

export async function GET(req: Request): Promise<Response> {
  return answer(async () => {
    await db.ensureSchema();
    const id = await db.createGuestUser();
    const url = new URL(req.url);
    const target = new URL(url.searchParams.get("redirectUrl") || "/", url);
    // only a redirect to this server: never an open redirect
    const location = target.origin === url.origin ? target.pathname + target.search : "/";
    return new Response(null, {
      status: 307,
      headers: { location, "set-cookie": await guestSessionCookie(id), "x-user-id": id },
    });
  });
}
