// The model: any OpenAI-compatible endpoint (the harness's mock provider, or
// OpenRouter) through @ai-sdk/openai-compatible, as ai-chatbot does once it
// is pointed away from the AI Gateway.
//
// PROVIDER_TIMEOUT_MS bounds each wait on the provider: for the answer's
// headers, then for each next chunk of its body. A wait that runs out is an
// error (not an abort), so the client gets an `error` part like for any
// other provider failure.

import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import type { LanguageModel } from "ai";
import { config } from "./config";

export class ProviderTimeout extends Error {
  constructor(what: string, ms: number) {
    super(`the provider sent no ${what} within ${ms} ms`);
    this.name = "ProviderTimeout";
  }
}

function withGapTimer(body: ReadableStream<Uint8Array>, ms: number, stop: () => void): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new ProviderTimeout("next chunk", ms)), ms);
      });
      try {
        const { done, value } = await Promise.race([reader.read(), late]);
        if (done) controller.close();
        else controller.enqueue(value);
      } catch (err) {
        stop();
        controller.error(err);
      } finally {
        clearTimeout(timer);
      }
    },
    cancel(reason) {
      stop();
      return reader.cancel(reason);
    },
  });
}

/** fetch with the per-wait timeout of PROVIDER_TIMEOUT_MS. */
export function timedFetch(ms: number): typeof fetch {
  return async (input, init) => {
    const abort = new AbortController();
    const outer = init?.signal;
    if (outer) outer.addEventListener("abort", () => abort.abort(outer.reason), { once: true });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        abort.abort();
        reject(new ProviderTimeout("answer", ms));
      }, ms);
    });
    try {
      const response = await Promise.race([fetch(input, { ...init, signal: abort.signal }), late]);
      if (!response.body) return response;
      return new Response(withGapTimer(response.body, ms, () => abort.abort()), {
        status: response.status,
        statusText: response.statusText,
        headers: response.headers,
      });
    } finally {
      clearTimeout(timer);
    }
  };
}

let provider: ReturnType<typeof createOpenAICompatible> | undefined;

export function model(id: string): LanguageModel {
  if (!provider) {
    const c = config();
    provider = createOpenAICompatible({
      name: "openrouter",
      baseURL: c.providerBaseUrl,
      apiKey: c.providerApiKey,
      includeUsage: true,
      fetch: timedFetch(c.providerTimeoutMs),
    });
  }
  return provider.chatModel(id);
}
