// Sessions (section 6): always looked up by id AND owner, so another user's
// session is indistinguishable from one that does not exist (C-AUTH-2).

import { pool, type Queryable } from "./db";
import { badRequest } from "./errors";
import { type Json, codePoints, requiredString, storable } from "./validation";

export const MAX_TITLE_CHARS = 255;
export const DEFAULT_TITLE = "New Chat";

export interface SessionRow {
  id: string;
  user_id: string;
  title: string;
  created_at: Date;
  updated_at: Date;
  message_count: number;
  total_tokens: string | number; // bigint: pg hands it over as a string
  last_model: string | null;
  last_message_preview: string | null;
  last_message_timestamp: Date | null;
}

export function toSession(row: SessionRow) {
  return {
    id: row.id,
    user_id: row.user_id,
    title: row.title,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
    message_count: row.message_count,
    total_tokens: Number(row.total_tokens),
    last_model: row.last_model,
    last_message_preview: row.last_message_preview,
    last_message_timestamp: row.last_message_timestamp?.toISOString() ?? null,
  };
}

export type Session = ReturnType<typeof toSession>;

/** A session id from a body or query: a non-empty string Postgres can store. */
export function sessionId(value: unknown, field: string): string {
  if (value === undefined || value === null || value === "") throw badRequest(`${field} is required`);
  if (typeof value !== "string") throw badRequest(`${field} must be a string`);
  return storable(value, field);
}

/** A title: null when absent or blank (if allowed), at most 255 characters. */
export function parseTitle(body: Json, key: string, required: boolean): string | null {
  const value = body[key];
  if (!required && (value === undefined || value === null)) return null;
  const title = requiredString(body, key);
  if (title.trim() === "") {
    if (required) throw badRequest(`${key} must not be blank`);
    return null;
  }
  if (codePoints(title) > MAX_TITLE_CHARS) throw badRequest(`${key} is longer than ${MAX_TITLE_CHARS} characters`);
  return storable(title, key);
}

export async function findSession(db: Queryable, userId: string, id: string): Promise<Session | null> {
  const { rows } = await db.query<SessionRow>("SELECT * FROM chat_sessions WHERE id = $1 AND user_id = $2", [id, userId]);
  return rows[0] ? toSession(rows[0]) : null;
}

export async function listSessions(userId: string): Promise<Session[]> {
  const { rows } = await pool().query<SessionRow>(
    "SELECT * FROM chat_sessions WHERE user_id = $1 ORDER BY updated_at DESC, id ASC",
    [userId],
  );
  return rows.map(toSession);
}

/** Creates the session; `created` false when the id exists (for anyone). */
export async function createSession(
  db: Queryable,
  userId: string,
  id: string,
  title: string,
): Promise<{ created: boolean; session: Session | null; ownerIsCaller: boolean }> {
  const inserted = await db.query<SessionRow>(
    `INSERT INTO chat_sessions (id, user_id, title) VALUES ($1, $2, $3)
     ON CONFLICT (id) DO NOTHING RETURNING *`,
    [id, userId, title],
  );
  if (inserted.rows[0]) return { created: true, session: toSession(inserted.rows[0]), ownerIsCaller: true };
  const existing = await db.query<SessionRow>("SELECT * FROM chat_sessions WHERE id = $1", [id]);
  const row = existing.rows[0];
  const ownerIsCaller = row?.user_id === userId;
  return { created: false, session: row && ownerIsCaller ? toSession(row) : null, ownerIsCaller };
}

export async function renameSession(userId: string, id: string, title: string): Promise<Session | null> {
  const { rows } = await pool().query<SessionRow>(
    `UPDATE chat_sessions SET title = $3, updated_at = now()
     WHERE id = $1 AND user_id = $2 RETURNING *`,
    [id, userId, title],
  );
  return rows[0] ? toSession(rows[0]) : null;
}

export async function deleteSession(userId: string, id: string): Promise<boolean> {
  const { rowCount } = await pool().query("DELETE FROM chat_sessions WHERE id = $1 AND user_id = $2", [id, userId]);
  return (rowCount ?? 0) > 0;
}
