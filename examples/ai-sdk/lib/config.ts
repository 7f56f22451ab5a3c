// Settings from the environment (the names of C-RUN-1), read once, and the
// switchable bug (CHAT_MUTANT) this process runs with.

export const MUTANTS = [
  "duplicate-key-resend",
  "empty-assistant-row",
  "title-in-context",
  "lost-user-message",
  "other-user-chat",
  "cut-stream-stored-as-done",
] as const;

export type Mutant = (typeof MUTANTS)[number];

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

function integer(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === "") return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0) {
    throw new Error(`${name} must be a non-negative integer, got ${JSON.stringify(text)}`);
  }
  return value;
}

export interface Config {
  databaseUrl: string;
  providerBaseUrl: string;
  providerApiKey: string;
  jwtSecret: string;
  /** Per provider call: the wait for the headers, then for each next chunk. */
  providerTimeoutMs: number;
  /** Retries of a failed provider call (the AI SDK's maxRetries; 0 = one attempt). */
  maxRetries: number;
  /** The model of the side call that names a new chat. */
  titleModel: string;
  mutant: Mutant | null;
}

let loaded: Config | undefined;

export function config(): Config {
  if (!loaded) {
    const mutant = process.env.CHAT_MUTANT || null;
    if (mutant !== null && !(MUTANTS as readonly string[]).includes(mutant)) {
      throw new Error(`CHAT_MUTANT=${mutant} is not one of: ${MUTANTS.join(", ")}`);
    }
    loaded = {
      databaseUrl: required("DATABASE_URL"),
      providerBaseUrl: required("OPENROUTER_BASE_URL").replace(/\/+$/, ""),
      providerApiKey: process.env.OPENROUTER_API_KEY ?? "",
      jwtSecret: required("JWT_SECRET"),
      providerTimeoutMs: integer("PROVIDER_TIMEOUT_MS", 30_000),
      maxRetries: integer("CHAT_MAX_RETRIES", 0),
      titleModel: process.env.CHAT_TITLE_MODEL || "title-model",
      mutant: mutant as Mutant | null,
    };
  }
  return loaded;
}

/** True when this process runs the named bug. */
export function mutant(name: Mutant): boolean {
  return config().mutant === name;
}
