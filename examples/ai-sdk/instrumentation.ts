// At server start: the tables (CREATE ... IF NOT EXISTS), so the first request
// does not pay for them and a wrong DATABASE_URL shows in the log at once.

export async function register(): Promise<void> {
  if (process.env.NEXT_RUNTIME !== "nodejs") return;
  const { ensureSchema } = await import("./lib/db");
  try {
    await ensureSchema();
  } catch (err) {
    console.error("schema:", err instanceof Error ? err.message : err);
  }
}
