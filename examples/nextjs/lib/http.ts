// What every route shares: the x-request-id header, errors as envelopes,
// 405 for a method a route does not have, and reading a bounded JSON body.

import { randomUUID } from "node:crypto";
import { ApiError, badRequest, errorResponse, notFound, tooLarge } from "./errors";
import { databaseErrorToApi } from "./db";

export type Handler = (req: Request) => Promise<Response>;

const METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] as const;
type Method = (typeof METHODS)[number];

export const MAX_BODY_BYTES = 10 * 1024 * 1024;

function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const mapped = databaseErrorToApi(err);
  if (mapped) return mapped;
  console.error("unhandled error:", err);
  return new ApiError(500, "internal_server_error", "Something went wrong on our side");
}

/** Runs a handler with a request id; whatever it throws becomes an envelope. */
async function serve(req: Request, handler: Handler): Promise<Response> {
  const requestId = req.headers.get("x-request-id") || `req_${randomUUID()}`;
  let res: Response;
  try {
    res = await handler(req);
  } catch (err) {
    res = errorResponse(toApiError(err));
  }
  res.headers.set("x-request-id", requestId);
  return res;
}

/**
 * The exports of one route file: the given handlers, and 405 for every other
 * method (Next.js would answer those itself, without our envelope).
 */
export function route(handlers: Partial<Record<"GET" | "POST" | "DELETE", Handler>>): Record<Method, Handler> {
  const allowed = Object.keys(handlers);
  if (handlers.GET) allowed.push("HEAD");
  const notAllowed = (method: string): Handler => async () => {
    throw new ApiError(405, "method_not_allowed", `Method ${method} is not allowed on this route`, {
      details: `Allowed: ${allowed.join(", ")}`,
      headers: { Allow: allowed.join(", ") },
    });
  };
  const table = {} as Record<Method, Handler>;
  for (const method of METHODS) {
    const handler = method === "HEAD" ? handlers.GET : handlers[method as keyof typeof handlers];
    const effective = handler ?? notAllowed(method);
    table[method] = (req) => serve(req, effective);
  }
  return table;
}

/** The exports of the catch-all route: 404 for every method. */
export function unknownRoute(): Record<Method, Handler> {
  const table = {} as Record<Method, Handler>;
  for (const method of METHODS) {
    table[method] = (req) =>
      serve(req, async () => {
        throw notFound(`No route ${method} ${new URL(req.url).pathname}`);
      });
  }
  return table;
}

/** The request body as JSON, at most 10 MiB (else 413), malformed → 400. */
export async function readJson(req: Request): Promise<unknown> {
  const declared = Number(req.headers.get("content-length") ?? "0");
  if (declared > MAX_BODY_BYTES) throw tooLarge("The request body is larger than 10 MiB");

  const chunks: Uint8Array[] = [];
  let size = 0;
  if (req.body) {
    const reader = req.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > MAX_BODY_BYTES) {
        await reader.cancel().catch(() => undefined);
        throw tooLarge("The request body is larger than 10 MiB");
      }
      chunks.push(value);
    }
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(Buffer.concat(chunks));
  } catch {
    throw badRequest("The request body is not valid UTF-8");
  }
  if (text.trim() === "") throw badRequest("The request body is empty", "Send a JSON object");
  try {
    return JSON.parse(text);
  } catch (err) {
    throw badRequest("The request body is not valid JSON", (err as Error).message);
  }
}

/** The request body as a JSON object (arrays, strings, null … → 400). */
export async function readObject(req: Request): Promise<Record<string, unknown>> {
  const body = await readJson(req);
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw badRequest("The request body must be a JSON object");
  }
  return body as Record<string, unknown>;
}

export function json(body: unknown, status = 200, headers?: Record<string, string>): Response {
  return Response.json(body, { status, headers });
}
