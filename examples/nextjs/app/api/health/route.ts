// C-RUN-2: GET /api/health, no auth.
import { json, route } from "@/lib/http";

export const dynamic = "force-dynamic";

export const { GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS } = route({
  GET: async () => json({ status: "ok" }),
});
