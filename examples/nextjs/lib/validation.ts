// Checking client input: every refusal is a 400 that names the field
// (C-ERR-3), never a database error later on.

import { badRequest } from "./errors";

export type Json = Record<string, unknown>;

export const MAX_INT = 2 ** 31 - 1;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Length in Unicode code points, as the contract and Postgres count. */
export function codePoints(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

export function firstCodePoints(text: string, max: number): string {
  return Array.from(text).slice(0, max).join("");
}

/** Refuses what Postgres cannot store in a text column: NUL, lone surrogates. */
export function storable(value: string, field: string): string {
  if (value.includes("\u0000")) throw badRequest(`${field} must not contain NUL characters`);
  if (LONE_SURROGATE.test(value)) throw badRequest(`${field} contains an unpaired UTF-16 surrogate`);
  return value;
}

export function requiredString(body: Json, key: string, field = key): string {
  const value = body[key];
  if (value === undefined || value === null) throw badRequest(`${field} is required`);
  if (typeof value !== "string") throw badRequest(`${field} must be a string`);
  return value;
}

export function optionalString(body: Json, key: string, field = key): string | null {
  const value = body[key];
  if (value === undefined || value === null) return null;
  if (typeof value !== "string") throw badRequest(`${field} must be a string`);
  return value;
}

export function optionalInt(body: Json, key: string, field = key): number | null {
  const value = body[key];
  if (value === undefined || value === null) return null;
  if (typeof value !== "number" || !Number.isInteger(value)) throw badRequest(`${field} must be an integer`);
  if (value < 0 || value > MAX_INT) throw badRequest(`${field} must be between 0 and ${MAX_INT}`);
  return value;
}

export function optionalBoolean(body: Json, key: string, field = key): boolean | null {
  const value = body[key];
  if (value === undefined || value === null) return null;
  if (typeof value !== "boolean") throw badRequest(`${field} must be true or false`);
  return value;
}

// ISO-8601 / RFC 3339 date-times: 2025-08-12T14:35:45.281Z, …+02:00, or no
// offset (UTC). Stricter than Date.parse, which takes "March 7" and local times.
const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$/;

/** Milliseconds since the epoch, or null when it is no ISO-8601 timestamp. */
export function parseTimestamp(text: string): number | null {
  const m = ISO.exec(text.trim());
  if (!m) return null;
  const [, y, mo, d, h = "0", mi = "0", s = "0", frac = "", offset] = m;
  const year = Number(y), month = Number(mo), day = Number(d);
  const hour = Number(h), minute = Number(mi), second = Number(s);
  if (month < 1 || month > 12 || hour > 23 || minute > 59 || second > 59 || year < 1) return null;
  const daysInMonth = new Date(Date.UTC(2000, month, 0)).getUTCDate(); // leap year: Feb has 29
  if (day < 1 || day > daysInMonth) return null;
  if (month === 2 && day === 29 && !(year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0))) return null;
  const ms = Number(frac.slice(0, 3).padEnd(3, "0")); // finer digits are cut (C-MSG-4)
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, ms);
  let epoch = date.getTime();
  if (offset && offset.toUpperCase() !== "Z") {
    const sign = offset.startsWith("-") ? -1 : 1;
    const digits = offset.slice(1).replace(":", "");
    const oh = Number(digits.slice(0, 2)), om = Number(digits.slice(2) || "0");
    if (oh > 23 || om > 59) return null;
    epoch -= sign * (oh * 60 + om) * 60_000;
  }
  const MAX = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
  const MIN = new Date(0).setUTCFullYear(1, 0, 1);
  return epoch < MIN || epoch > MAX ? null : epoch;
}

export function requiredTimestamp(body: Json, key: string, field = key): number {
  const text = requiredString(body, key, field);
  const epoch = parseTimestamp(text);
  if (epoch === null) {
    throw badRequest(`${field} is not an ISO-8601 timestamp`, `got ${JSON.stringify(text.slice(0, 64))}`);
  }
  return epoch;
}

export const ROLES = ["user", "assistant", "system"] as const;
export type Role = (typeof ROLES)[number];

/** A message as the client holds it (C-MSG section 5); unknown fields dropped. */
export interface ChatMessage {
  id: string;
  role: Role;
  content: string;
  timestamp: number; // ms since epoch
  model: string | null;
  originalModel: string | null;
  input_tokens: number | null;
  output_tokens: number | null;
  total_tokens: number | null;
  user_message_id: string | null;
  contentType: "text" | "markdown" | null;
  elapsed_ms: number | null;
  completion_id: string | null;
  error: boolean;
  error_message: string | null;
}

export function parseChatMessage(value: unknown, where: string): ChatMessage {
  if (!isObject(value)) throw badRequest(`${where} must be an object`);
  const field = (key: string) => `${where}.${key}`;
  const str = (key: string) => {
    const text = optionalString(value, key, field(key));
    return text === null ? null : storable(text, field(key));
  };

  const id = storable(requiredString(value, "id", field("id")), field("id"));
  if (id.trim() === "") throw badRequest(`${field("id")} must not be empty`);
  const role = requiredString(value, "role", field("role"));
  if (!(ROLES as readonly string[]).includes(role)) {
    throw badRequest(`${field("role")} must be one of ${ROLES.join(", ")}`, `got ${JSON.stringify(role.slice(0, 32))}`);
  }
  const content = storable(requiredString(value, "content", field("content")), field("content"));
  const contentType = optionalString(value, "contentType", field("contentType"));
  if (contentType !== null && contentType !== "text" && contentType !== "markdown") {
    throw badRequest(`${field("contentType")} must be "text" or "markdown"`);
  }
  return {
    id,
    role: role as Role,
    content,
    timestamp: requiredTimestamp(value, "timestamp", field("timestamp")),
    model: str("model"),
    originalModel: str("originalModel"),
    input_tokens: optionalInt(value, "input_tokens", field("input_tokens")),
    output_tokens: optionalInt(value, "output_tokens", field("output_tokens")),
    total_tokens: optionalInt(value, "total_tokens", field("total_tokens")),
    user_message_id: str("user_message_id"),
    contentType,
    elapsed_ms: optionalInt(value, "elapsed_ms", field("elapsed_ms")),
    completion_id: str("completion_id"),
    error: optionalBoolean(value, "error", field("error")) ?? false,
    error_message: str("error_message"),
  };
}

/** Sorts by timestamp, ties by position in the list (a stable sort). */
export function chronological<T extends { timestamp: number }>(items: T[]): T[] {
  return items
    .map((item, index) => ({ item, index }))
    .sort((a, b) => a.item.timestamp - b.item.timestamp || a.index - b.index)
    .map(({ item }) => item);
}

