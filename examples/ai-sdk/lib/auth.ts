// Who is calling: a bearer JWT (HS256 with JWT_SECRET, `sub` the user's
// UUID, as the harness's contract has it), or the session cookie that
// GET /api/auth/guest sets (a JWT of the same kind, like ai-chatbot's guests).

import { jwtVerify, SignJWT } from "jose";
import { config } from "./config";
import { unauthorized } from "./errors";

export const SESSION_COOKIE = "chat_session";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const GUEST_SESSION_SECONDS = 30 * 24 * 3600;

function key(): Uint8Array {
  return new TextEncoder().encode(config().jwtSecret);
}

function cookie(req: Request, name: string): string | undefined {
  for (const item of (req.headers.get("cookie") ?? "").split(";")) {
    const [k, ...v] = item.trim().split("=");
    if (k === name) return decodeURIComponent(v.join("="));
  }
  return undefined;
}

/** The caller's user id (a lower-case UUID); a 401 ChatError without a valid token. */
export async function userId(req: Request): Promise<string> {
  const header = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.get("authorization") ?? "");
  const token = header?.[1] ?? cookie(req, SESSION_COOKIE);
  if (!token) throw unauthorized();
  try {
    const { payload } = await jwtVerify(token, key(), { algorithms: ["HS256"], clockTolerance: 60 });
    if (typeof payload.sub === "string" && UUID.test(payload.sub)) return payload.sub.toLowerCase();
  } catch {
    // an invalid or expired token: the same 401 as none
  }
  throw unauthorized();
}

/** The Set-Cookie value of a new guest session for `id`. */
export async function guestSessionCookie(id: string): Promise<string> {
  const token = await new SignJWT({ type: "guest" })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(id)
    .setIssuedAt()
    .setExpirationTime(`${GUEST_SESSION_SECONDS}s`)
    .sign(key());
  return `${SESSION_COOKIE}=${token}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${GUEST_SESSION_SECONDS}`;
}
