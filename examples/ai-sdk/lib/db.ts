// PostgreSQL: one pool, the schema (created at start, IF NOT EXISTS), and the
// queries. The tables have ai-chatbot's names and columns ("Chat",
// "Message_v2"), so one profile's SQL reads both apps.

import { Pool, type PoolClient } from "pg";
import { config } from "./config";

const globalForPool = globalThis as unknown as { aiSdkPool?: Pool; aiSdkSchema?: Promise<void> };

export function pool(): Pool {
  if (!globalForPool.aiSdkPool) {
    const created = new Pool({ connectionString: config().databaseUrl, max: 10 });
    created.on("error", (err) => console.error("postgres: idle client error:", err.message));
    globalForPool.aiSdkPool = created;
  }
  return globalForPool.aiSdkPool;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS "User" (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  email varchar(64) NOT NULL,
  password varchar(64)
);
CREATE TABLE IF NOT EXISTS "Chat" (
  id uuid PRIMARY KEY,
  "createdAt" timestamptz NOT NULL,
  title text NOT NULL,
  "userId" uuid NOT NULL,
  visibility varchar NOT NULL DEFAULT 'private'
);
CREATE TABLE IF NOT EXISTS "Message_v2" (
  id uuid PRIMARY KEY,
  "chatId" uuid NOT NULL REFERENCES "Chat"(id) ON DELETE CASCADE,
  role varchar NOT NULL,
  parts json NOT NULL,
  attachments json NOT NULL,
  "createdAt" timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS "Message_v2_chat" ON "Message_v2" ("chatId", "createdAt");
`;

/** Creates the tables once per process (an advisory lock keeps two starts apart). */
export function ensureSchema(): Promise<void> {
  if (!globalForPool.aiSdkSchema) {
    globalForPool.aiSdkSchema = transaction(async (client) => {
      await client.query("SELECT pg_advisory_xact_lock(7261016)");
      await client.query(SCHEMA);
    }).catch((err) => {
      globalForPool.aiSdkSchema = undefined; // the next request tries again
      throw err;
    });
  }
  return globalForPool.aiSdkSchema;
}

export async function transaction<T>(fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool().connect();
  try {
    await client.query("BEGIN");
    const result = await fn(client);
    await client.query("COMMIT");
    return result;
  } catch (err) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

export function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown })?.code;
  return typeof code === "string" ? code : undefined;
}

// -- users ------------------------------------------------------------------

export async function createGuestUser(): Promise<string> {
  const { rows } = await pool().query<{ id: string }>(
    `INSERT INTO "User" (email) VALUES ('guest-' || floor(extract(epoch FROM clock_timestamp()) * 1000)::text)
     RETURNING id`,
  );
  return rows[0].id;
}

// -- chats ------------------------------------------------------------------

export interface ChatRow {
  id: string;
  createdAt: Date;
  title: string;
  userId: string;
  visibility: string;
}

export async function getChat(id: string): Promise<ChatRow | null> {
  const { rows } = await pool().query<ChatRow>(`SELECT * FROM "Chat" WHERE id = $1`, [id]);
  return rows[0] ?? null;
}

/** Creates the chat; false when it exists already (a concurrent first turn). */
export async function createChat(chat: Omit<ChatRow, "createdAt">): Promise<boolean> {
  const { rowCount } = await pool().query(
    `INSERT INTO "Chat" (id, "createdAt", title, "userId", visibility)
     VALUES ($1, clock_timestamp(), $2, $3, $4) ON CONFLICT (id) DO NOTHING`,
    [chat.id, chat.title, chat.userId, chat.visibility],
  );
  return rowCount === 1;
}

export async function setChatTitle(id: string, title: string): Promise<void> {
  await pool().query(`UPDATE "Chat" SET title = $2 WHERE id = $1`, [id, title]);
}

export async function listChats(userId: string, limit: number): Promise<{ chats: ChatRow[]; hasMore: boolean }> {
  const { rows } = await pool().query<ChatRow>(
    `SELECT * FROM "Chat" WHERE "userId" = $1 ORDER BY "createdAt" DESC, id LIMIT $2`,
    [userId, limit + 1],
  );
  return { chats: rows.slice(0, limit), hasMore: rows.length > limit };
}

export async function deleteChat(id: string): Promise<ChatRow | null> {
  const { rows } = await pool().query<ChatRow>(`DELETE FROM "Chat" WHERE id = $1 RETURNING *`, [id]);
  return rows[0] ?? null;
}

// -- messages ---------------------------------------------------------------

export interface MessageRow {
  id: string;
  chatId: string;
  role: "user" | "assistant";
  parts: unknown[];
  createdAt: Date;
}

export async function getMessages(chatId: string): Promise<MessageRow[]> {
  const { rows } = await pool().query<MessageRow>(
    `SELECT id, "chatId", role, parts, "createdAt" FROM "Message_v2"
     WHERE "chatId" = $1 ORDER BY "createdAt", id`,
    [chatId],
  );
  return rows;
}

/** A plain INSERT: a second row with the same id is a primary-key violation. */
export async function insertMessage(chatId: string, id: string, role: string, parts: unknown[]): Promise<void> {
  await pool().query(
    `INSERT INTO "Message_v2" (id, "chatId", role, parts, attachments, "createdAt")
     VALUES ($1, $2, $3, $4, '[]', clock_timestamp())`,
    [id, chatId, role, JSON.stringify(parts)],
  );
}

export type SaveUserResult = "new" | "resent" | "other-chat";

/** The answers to user message $2 of chat $1: the assistant rows after it, up to the next user message. */
const DELETE_ANSWERS_OF = `WITH t AS (SELECT "createdAt" AS at FROM "Message_v2" WHERE id = $2)
  DELETE FROM "Message_v2" m USING t
  WHERE m."chatId" = $1 AND m.role = 'assistant' AND m."createdAt" > t.at
    AND NOT EXISTS (SELECT 1 FROM "Message_v2" u
                    WHERE u."chatId" = $1 AND u.role = 'user'
                      AND u."createdAt" > t.at AND u."createdAt" < m."createdAt")`;

/**
 * Stores the user message once. Sent again (a retry after a failure or a cut),
 * it keeps its row and place, and what answered it before is dropped (its
 * answers only, not the turns after it): the turn is answered anew. An id
 * stored in another chat is refused.
 */
export async function saveUserMessage(chatId: string, id: string, parts: unknown[]): Promise<SaveUserResult> {
  return transaction(async (client) => {
    const { rows } = await client.query<{ inserted: boolean }>(
      `INSERT INTO "Message_v2" (id, "chatId", role, parts, attachments, "createdAt")
       VALUES ($1, $2, 'user', $3, '[]', clock_timestamp())
       ON CONFLICT (id) DO UPDATE SET parts = EXCLUDED.parts
         WHERE "Message_v2"."chatId" = EXCLUDED."chatId" AND "Message_v2".role = 'user'
       RETURNING (xmax = 0) AS inserted`,
      [id, chatId, JSON.stringify(parts)],
    );
    if (rows.length === 0) return "other-chat";
    if (rows[0].inserted) return "new";
    // timestamps compared in SQL: a JS Date would cut them to milliseconds. Only
    // this message's answers go (up to the next user message): a turn another tab
    // sent meanwhile stays (deleting all after it lost that turn).
    await client.query(
      DELETE_ANSWERS_OF,
      [chatId, id],
    );
    return "resent";
  });
}

/**
 * Stores the answer to one user message. The chat row is locked, so two
 * answers to the same resent message (a resend racing the first send) end as
 * one: the later replaces the earlier. Only for a resend: a new turn's answer
 * replaces nothing (two tabs' turns stored u1, u2 then answered a2, a1 would
 * otherwise lose a2, which sits right after u1).
 */
export async function saveAssistantMessage(
  chatId: string,
  userMessageId: string,
  id: string,
  parts: unknown[],
  replace: boolean,
): Promise<void> {
  await transaction(async (client) => {
    await client.query(`SELECT 1 FROM "Chat" WHERE id = $1 FOR UPDATE`, [chatId]);
    const { rowCount } = await client.query(
      `SELECT 1 FROM "Message_v2" WHERE id = $1 AND "chatId" = $2`,
      [userMessageId, chatId],
    );
    if (rowCount === 0) return; // the turn was deleted meanwhile (chat deleted, or regenerated)
    // an earlier answer to the same user message (before the next user message) goes
    if (replace) await client.query(
      DELETE_ANSWERS_OF,
      [chatId, userMessageId],
    );
    await client.query(
      `INSERT INTO "Message_v2" (id, "chatId", role, parts, attachments, "createdAt")
       VALUES ($1, $2, 'assistant', $3, '[]', clock_timestamp())`,
      [id, chatId, JSON.stringify(parts)],
    );
  });
}
