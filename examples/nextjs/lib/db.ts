// One PostgreSQL pool for the whole server, transactions, and what a
// database error means for the client (C-ERR-2: unreachable → 503).

import { Pool, type PoolClient } from "pg";
import { ApiError, badRequest, conflict, serviceUnavailable } from "./errors";

const globalForPool = globalThis as unknown as { chatPool?: Pool };

export function pool(): Pool {
  if (!globalForPool.chatPool) {
    const created = new Pool({
      connectionString: process.env.DATABASE_URL,
      max: 10,
      connectionTimeoutMillis: 5_000,
    });
    // An idle client whose server went away must not crash the process.
    created.on("error", (err) => console.error("postgres: idle client error:", err.message));
    globalForPool.chatPool = created;
  }
  return globalForPool.chatPool;
}

export type Queryable = Pick<PoolClient, "query">;

const RETRYABLE = new Set(["40001", "40P01"]); // serialization failure, deadlock

/** Runs fn in one transaction (BEGIN … COMMIT), rolled back on any error. */
export async function transaction<T>(fn: (client: PoolClient) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const client = await pool().connect();
    let broken: Error | undefined;
    try {
      await client.query("BEGIN");
      const result = await fn(client);
      await client.query("COMMIT");
      return result;
    } catch (err) {
      try {
        await client.query("ROLLBACK");
      } catch (rollbackErr) {
        broken = rollbackErr as Error;
      }
      if (attempt < 3 && RETRYABLE.has(sqlState(err) ?? "")) continue;
      throw err;
    } finally {
      client.release(broken);
    }
  }
}

function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown })?.code;
  return typeof code === "string" ? code : undefined;
}

const NETWORK_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "ETIMEDOUT", "EPIPE", "EHOSTUNREACH"]);

/** The client-facing meaning of a database error, or null for a server bug. */
export function databaseErrorToApi(err: unknown): ApiError | null {
  const code = sqlState(err);
  const message = err instanceof Error ? err.message : String(err);
  if (
    (code && (NETWORK_CODES.has(code) || code.startsWith("08") || code.startsWith("57P") || code === "53300")) ||
    /Connection terminated|timeout exceeded when trying to connect|connect ECONNREFUSED/i.test(message)
  ) {
    return serviceUnavailable("The database is unreachable", "Please try again shortly");
  }
  // Validation should have caught these; never let bad data become a 500.
  if (code?.startsWith("22")) return badRequest("A value cannot be stored", message.split("\n")[0]);
  if (code === "23505") return conflict("The record already exists");
  return null;
}
