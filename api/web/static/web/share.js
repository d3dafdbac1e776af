// The share page (`/s/<token>`): a read-only conversation, every page of
// `GET /api/v1/shared/<token>/`, rendered by the chat's own renderer (messages.js,
// markdown.js). No sign-in, no token of the reader's is read or sent.

import { restRequest } from "./api.js";
import { $ } from "./dom.js";
import { normalizeMessage, renderMessage } from "./messages.js";

const PAGE_SIZE = 100;
const API_URL = "/api/v1/";

/** The app's message object from the REST message shape. */
function fromRest(raw) {
  const message = normalizeMessage({
    ...raw,
    conversationId: raw.conversation,
    clientMessageId: null,
    turnId: raw.turn_id,
    createdAt: raw.created_at,
    updatedAt: raw.updated_at,
  });
  message.attachments = message.attachments.map((file) => ({ ...file, contentType: file.content_type }));
  return message;
}

async function load() {
  const token = document.body.dataset.shareToken;
  const agentName = document.body.dataset.agentName || "Assistant";
  const list = $("#messages");
  const status = $("#share-status");
  let after = null;
  try {
    for (;;) {
      const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
      if (after) query.set("after", String(after));
      // No token: restRequest sends an Authorization header only when given one.
      const page = await restRequest(API_URL, "GET", `shared/${encodeURIComponent(token)}/?${query}`, null);
      for (const raw of page.results) list.append(renderMessage(fromRest(raw), { agentName }));
      if (!page.has_newer) break;
      after = page.newer_cursor;
    }
    status.textContent = list.childElementCount ? "" : "No messages.";
  } catch (error) {
    status.textContent = error.status === 404 ? "This link was revoked." : `Could not load the conversation: ${error.message}`;
  }
}

load();
