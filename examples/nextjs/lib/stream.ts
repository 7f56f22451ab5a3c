// POST /api/chat/stream: the provider's tokens as text/plain, then one final
// line, __FINAL_METADATA__ or __STREAM_ERROR__ (C-STREAM-1..3).

import { type AnswerMeta } from "./chat";
import { type ApiError } from "./errors";
import { type ProviderStream, badGateway } from "./provider";

/**
 * Waits for the first token that is not blank; until then every failure is
 * thrown (and answered as a JSON error, C-STREAM-2), not streamed.
 */
export async function firstText(provider: ProviderStream): Promise<string> {
  let head = "";
  for (;;) {
    const event = await provider.next();
    if (event.kind === "error") {
      provider.close();
      throw event.failure;
    }
    if (event.kind === "end") {
      provider.close();
      throw badGateway("The model provider sent an empty answer");
    }
    head += event.text;
    if (head.trim() !== "") return head;
  }
}

function streamError(failure: ApiError) {
  const { code, message, extras } = failure;
  return { __STREAM_ERROR__: { code, error: message, ...(extras.retryAfter !== undefined ? { retryAfter: extras.retryAfter } : {}) } };
}

/** The response body: head, each later token as it comes, then the final line. */
export function textStream(
  provider: ProviderStream,
  head: string,
  finish: (text: string) => AnswerMeta,
): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let text = head;
  let headSent = false;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!headSent) {
        headSent = true;
        controller.enqueue(encoder.encode(head));
        return;
      }
      const event = await provider.next();
      if (event.kind === "token") {
        text += event.text;
        controller.enqueue(encoder.encode(event.text));
        return;
      }
      const last = event.kind === "end" ? { __FINAL_METADATA__: finish(text) } : streamError(event.failure);
      controller.enqueue(encoder.encode(`\n${JSON.stringify(last)}`));
      controller.close();
      provider.close();
    },
    cancel() {
      provider.close(); // the client went away: stop the provider call too
    },
  });
}
