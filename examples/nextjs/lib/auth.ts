// C-AUTH-1: Bearer JWT, HS256 with JWT_SECRET, `sub` a UUID, `exp` honoured
// with up to 60 s of clock skew.

import { errors, jwtVerify } from "jose";
import { ApiError } from "./errors";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const CLOCK_SKEW_SECONDS = 60;

let secretKey: Uint8Array | undefined;

function secret(): Uint8Array {
  if (!secretKey) {
    const value = process.env.JWT_SECRET;
    if (!value) throw new Error("JWT_SECRET is not set");
    secretKey = new TextEncoder().encode(value);
  }
  return secretKey;
}

/** The caller's user id (a lower-case UUID), or a 401 ApiError. */
export async function authenticate(req: Request): Promise<string> {
  const header = req.headers.get("authorization")?.trim() ?? "";
  const match = /^Bearer(?:\s+(.*))?$/i.exec(header);
  const token = match?.[1]?.trim();
  if (!token) {
    throw new ApiError(401, "auth_required", "Authentication required", {
      details: "Send Authorization: Bearer <token>",
    });
  }
  let sub: unknown;
  try {
    const { payload } = await jwtVerify(token, secret(), {
      algorithms: ["HS256"],
      clockTolerance: CLOCK_SKEW_SECONDS,
    });
    sub = payload.sub;
  } catch (err) {
    if (err instanceof errors.JWTExpired) {
      throw new ApiError(401, "token_expired", "Your session has expired", { details: "Sign in again" });
    }
    throw new ApiError(401, "token_invalid", "Invalid token");
  }
  if (typeof sub !== "string" || !UUID.test(sub)) {
    throw new ApiError(401, "token_invalid", "Invalid token", { details: "sub must be a user UUID" });
  }
  return sub.toLowerCase();
}
