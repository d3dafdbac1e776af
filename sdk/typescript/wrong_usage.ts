/**
 * Mistakes the generated types must catch. This file must NOT compile: each line marked
 * `// error TSxxxx` has to fail with exactly that error, and no other line may fail
 * (tests/e2e/test_typescript.py checks it with `tsc -p tsconfig.wrong.json`).
 */
import type { ApiError, Message, MessagePage, SendMessageBody } from "./usage";
import { Confab } from "./usage";

export function mistakes(page: MessagePage, message: Message, error: ApiError, api: Confab) {
  const more: boolean = page.has_more; // error TS2339
  const body: SendMessageBody = { content: "hi", client_msg_id: "42" }; // error TS2561
  const fromAssistant = message.role === "assistant"; // error TS2367
  const cursor: number = page.older_cursor; // error TS2322
  const blank = error.fields["content"]; // error TS18048
  const older = api.history(1, { before: "301" }); // error TS2322
  const tokens: number = message.usage.total_tokens; // error TS18047
  return { more, body, fromAssistant, cursor, blank, older, tokens };
}
