/**
 * A small typed client for Confab's REST API, written only against the types that
 * openapi-typescript generates from openapi.yaml (`build/confab.d.ts`, see `make ts-types`).
 *
 * It is type-checked (`tsc --noEmit`, strict), not run: if the schema stops describing what
 * a client needs (the error shape, nullable fields, enums, the history page), this file
 * stops compiling. `wrong_usage.ts` holds mistakes that must NOT compile.
 */
import type { components, paths } from "./build/confab";

// --- shapes ------------------------------------------------------------------------------

export type Schemas = components["schemas"];
export type ApiError = Schemas["Error"];
export type Message = Schemas["Message"];
export type MessagePage = Schemas["MessagePage"];
export type Conversation = Schemas["Conversation"];
export type TurnResult = Schemas["TurnResult"];
export type Token = Schemas["Token"];

/** The JSON body of one response of an operation. */
type Json<R> = R extends { content: { "application/json": infer Body } } ? Body : never;
type ResponseBody<Op extends { responses: object }, S extends keyof Op["responses"]> = Json<
  Op["responses"][S]
>;
type RequestBody<Op extends { requestBody?: unknown }> = Json<NonNullable<Op["requestBody"]>>;

type SignIn = paths["/api/v1/auth/token/"]["post"];
type CreateConversation = paths["/api/v1/conversations/"]["post"];
type SendMessage = paths["/api/v1/conversations/{conversation_id}/messages/"]["post"];
type History = paths["/api/v1/conversations/{conversation_id}/messages/"]["get"];
type CancelTurn = paths["/api/v1/conversations/{conversation_id}/cancel/"]["post"];

export type SendMessageBody = RequestBody<SendMessage>;
export type HistoryQuery = NonNullable<History["parameters"]["query"]>;

// --- compile-time checks of the schema ---------------------------------------------------

type Equal<A, B> =
  (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Expect<T extends true> = T;

export type SchemaChecks = [
  // Enums are closed unions, not plain strings.
  Expect<Equal<Message["role"], "system" | "human" | "ai" | "tool">>,
  Expect<
    Equal<Message["status"], "queued" | "streaming" | "complete" | "failed" | "cancelled" | "awaiting_approval">
  >,
  // Nullable fields say so; required ones are not optional.
  Expect<Equal<Message["turn_id"], string | null>>,
  Expect<Equal<Message["usage"], Schemas["Usage"] | null>>,
  Expect<Equal<MessagePage["older_cursor"], number | null>>,
  Expect<Equal<MessagePage["newer_cursor"], number | null>>,
  Expect<Equal<Conversation["last_message"], Message | null>>,
  // Cursors are message ids: what a page gives back is what the next request takes.
  Expect<Equal<HistoryQuery["before"], number | undefined>>,
  // Every outcome of sending a message is a TurnResult or the one Error shape.
  Expect<Equal<ResponseBody<SendMessage, 201>, TurnResult>>,
  Expect<Equal<ResponseBody<SendMessage, 200>, TurnResult>>,
  Expect<Equal<ResponseBody<SendMessage, 202>, TurnResult>>,
  Expect<Equal<ResponseBody<SendMessage, 409>, ApiError>>,
  Expect<Equal<ResponseBody<History, 404>, ApiError>>,
  Expect<Equal<ResponseBody<CancelTurn, 202>, Schemas["CancelResult"]>>,
];

// --- a tiny fetch wrapper ----------------------------------------------------------------

export type Result<T> =
  | { ok: true; status: number; data: T; headers: Headers }
  | { ok: false; status: number; error: ApiError; headers: Headers };

export class Confab {
  constructor(
    readonly baseUrl: string,
    readonly token: string | null = null,
  ) {}

  async request<T>(
    method: "GET" | "POST" | "PATCH" | "DELETE",
    path: string,
    options: { body?: unknown; query?: Record<string, string | number | boolean | undefined> } = {},
  ): Promise<Result<T>> {
    const url = new URL(path, this.baseUrl);
    for (const [name, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(name, String(value));
    }
    const headers: Record<string, string> = { Accept: "application/json" };
    if (this.token !== null) headers["Authorization"] = `Bearer ${this.token}`;
    const init: RequestInit = { method, headers };
    if (options.body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(options.body);
    }
    const response = await fetch(url, init);
    const json: unknown = response.status === 204 ? null : await response.json();
    return response.ok
      ? { ok: true, status: response.status, data: json as T, headers: response.headers }
      : { ok: false, status: response.status, error: json as ApiError, headers: response.headers };
  }

  static async signIn(
    baseUrl: string,
    body: RequestBody<SignIn>,
  ): Promise<Result<ResponseBody<SignIn, 200>>> {
    return new Confab(baseUrl).request("POST", "/api/v1/auth/token/", { body });
  }

  createConversation(
    body: RequestBody<CreateConversation>,
  ): Promise<Result<ResponseBody<CreateConversation, 201>>> {
    return this.request("POST", "/api/v1/conversations/", { body });
  }

  sendMessage(
    conversationId: SendMessage["parameters"]["path"]["conversation_id"],
    body: SendMessageBody,
  ): Promise<Result<ResponseBody<SendMessage, 201>>> {
    return this.request("POST", `/api/v1/conversations/${conversationId}/messages/`, { body });
  }

  history(
    conversationId: History["parameters"]["path"]["conversation_id"],
    query: HistoryQuery = {},
  ): Promise<Result<ResponseBody<History, 200>>> {
    return this.request("GET", `/api/v1/conversations/${conversationId}/messages/`, { query });
  }

  /** Every message, newest page first, walking back with `before=<older_cursor>`. */
  async *olderPages(conversationId: number, limit = 50): AsyncGenerator<Message[]> {
    let query: HistoryQuery = { limit };
    for (;;) {
      const page = await this.history(conversationId, query);
      if (!page.ok) throw new ConfabError(page.error, page.status);
      yield page.data.results;
      if (!page.data.has_older || page.data.older_cursor === null) return;
      query = { limit, before: page.data.older_cursor };
    }
  }

  /** Catch up after being offline: everything newer than the last message id we hold. */
  async newerThan(conversationId: number, lastId: number): Promise<Message[]> {
    const messages: Message[] = [];
    let after: number | null = lastId;
    while (after !== null) {
      const page = await this.history(conversationId, { after, limit: 200 });
      if (!page.ok) throw new ConfabError(page.error, page.status);
      messages.push(...page.data.results);
      after = page.data.has_newer ? page.data.newer_cursor : null;
    }
    return messages;
  }
}

// --- errors ------------------------------------------------------------------------------

export class ConfabError extends Error {
  constructor(
    readonly body: ApiError,
    readonly status: number,
  ) {
    super(`${status} ${body.code}: ${body.detail}`);
  }

  /** Per-field problems as "field: code" lines (empty when the error is not about fields). */
  fieldProblems(): string[] {
    return Object.entries(this.body.fields ?? {}).flatMap(([field, problems]) =>
      problems.map((problem) => `${field}: ${problem.code} (${problem.message})`),
    );
  }
}

export function userMessageFor(error: ApiError): string {
  switch (error.code) {
    case "TURN_IN_PROGRESS":
      return "Wait for the reply to finish.";
    case "RATE_LIMITED":
      return "Too many messages; try again in a moment.";
    case "NOT_FOUND":
      return "This conversation no longer exists.";
    default:
      return error.fields?.["content"]?.[0]?.message ?? error.detail;
  }
}

// --- messages ----------------------------------------------------------------------------

export function speaker(message: Message): string {
  switch (message.role) {
    case "human":
      return "You";
    case "ai":
      return "Assistant";
    case "tool":
      return "Tool";
    case "system":
      return "System";
    default: {
      // Exhaustive: a new role in the schema fails to compile here.
      const unknown: never = message.role;
      return unknown;
    }
  }
}

export function render(message: Message): string {
  const tokens = message.usage === null ? "" : ` [${message.usage.total_tokens} tokens]`;
  const failure = message.error === null ? "" : ` (failed: ${message.error.code})`;
  const live = message.status === "streaming" ? " …" : "";
  return `${speaker(message)}: ${message.text}${live}${failure}${tokens}`;
}

export async function demo(baseUrl: string): Promise<void> {
  const signedIn = await Confab.signIn(baseUrl, {
    username: "ana",
    password: "correct horse battery",
    device_name: "TypeScript example",
  });
  if (!signedIn.ok) throw new ConfabError(signedIn.error, signedIn.status);
  const api = new Confab(baseUrl, signedIn.data.token);

  const created = await api.createConversation({
    agent: "language-tutor",
    title: "Coffee order",
    context: { 언어: "일본어", 레벨: 1 },
  });
  if (!created.ok) throw new ConfabError(created.error, created.status);

  const sent = await api.sendMessage(created.data.id, {
    content: "커피 한 잔 주세요",
    client_message_id: "0b8e6c1e-6c5a-4f1f",
  });
  if (!sent.ok) {
    console.log(userMessageFor(sent.error), new ConfabError(sent.error, sent.status).fieldProblems());
    return;
  }
  // `ai_message` is null when the message was queued behind a running turn (on_busy).
  const reply = sent.data.ai_message;
  console.log(render(sent.data.human_message), reply ? render(reply) : "queued");
  for await (const page of api.olderPages(created.data.id, 20)) {
    page.forEach((message) => console.log(render(message)));
  }
  console.log(await api.newerThan(created.data.id, (reply ?? sent.data.human_message).id));
}
