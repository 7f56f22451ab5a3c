// GET /api/health: up, and the database reachable with the schema in place.

import * as db from "@/lib/db";
import { answer } from "@/lib/errors";

export const dynamic = "force-dynamic";

export async function GET(): Promise<Response> {
  return answer(async () => {
    await db.ensureSchema();
    return Response.json({ status: "ok" });
  });
}
