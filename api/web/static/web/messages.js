// Messages: normalising API shapes, merging live events into them, and rendering.

import { h, shortTime, fullTime } from "./dom.js";
import { fillMarkdown } from "./markdown.js";

// `awaiting_approval`: the reply is stored whole; its tool calls wait for the user.
const FINAL = new Set(["complete", "failed", "cancelled", "awaiting_approval"]);

/** Python counts `offset` in code points; JS strings count UTF-16 units. */
export function codePoints(text) {
  let count = 0;
  for (const _ of text) count += 1; // eslint-disable-line no-unused-vars
  return count;
}

const lower = (value) => (value == null ? "" : String(value).toLowerCase());

/** The app's message object from a GraphQL Message. */
export function normalizeMessage(raw) {
  const text = raw.text || "";
  return {
    id: String(raw.id),
    conversationId: raw.conversationId != null ? String(raw.conversationId) : null,
    role: lower(raw.role),
    status: lower(raw.status) || "complete",
    text,
    cp: codePoints(text),
    content: raw.content ?? null,
    error: raw.error ?? null,
    clientMessageId: raw.clientMessageId ?? null,
    turnId: raw.turnId ?? null,
    model: raw.model || "",
    usage: raw.usage ?? null,
    attachments: Array.isArray(raw.attachments) ? raw.attachments : [],
    // The user's own rating; events carry none (`undefined`: keep what we hold).
    feedback: raw.feedback === undefined ? undefined : raw.feedback ? { rating: lower(raw.feedback.rating), comment: raw.feedback.comment || "" } : null,
    createdAt: raw.createdAt ?? null,
    updatedAt: raw.updatedAt ?? null,
    parentId: raw.parentId != null ? String(raw.parentId) : null,
    // The versions of this message (regenerated replies, edits): `< index+1 / ids.length >`.
    siblings: raw.siblings ? { ids: raw.siblings.ids.map(String), index: raw.siblings.index } : null,
  };
}

/**
 * Combine what we hold with a newer snapshot of the same message. A snapshot
 * taken mid-stream may be shorter than what deltas already gave us, and a late
 * `streaming` snapshot must not undo a final status.
 */
export function mergeMessage(local, incoming) {
  if (!local) return { ...incoming };
  if (FINAL.has(local.status) && !FINAL.has(incoming.status)) return local;
  const merged = { ...local, ...incoming };
  if (incoming.feedback === undefined) merged.feedback = local.feedback;
  if (
    incoming.status === "streaming" &&
    local.text.length > incoming.text.length &&
    local.text.startsWith(incoming.text)
  ) {
    merged.text = local.text;
    merged.cp = local.cp;
  }
  return merged;
}

/**
 * Apply a `message.delta`. Returns true when the text changed. `offset` is where
 * `delta` starts in the full text: skip what we already have, append the rest;
 * a gap (offset beyond our text) is left for the completion snapshot to fill.
 */
export function applyDelta(message, offset, delta) {
  if (FINAL.has(message.status) || !delta) return false;
  const have = message.cp;
  if (offset > have) return false;
  const chars = Array.from(delta);
  if (offset + chars.length <= have) return false;
  const fresh = offset === have ? delta : chars.slice(have - offset).join("");
  message.text += fresh;
  message.cp = have + (chars.length - (have - offset));
  return true;
}

export function isFinal(message) {
  return FINAL.has(message.status);
}

// ---------------------------------------------------------------- rendering

function safeUrl(url) {
  try {
    const parsed = new URL(url, window.location.href);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch {
    return null;
  }
}

function formatSize(bytes) {
  if (typeof bytes !== "number") return "";
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function cellText(value) {
  if (value === null || value === undefined) return "";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

const MAX_TABLE_ROWS = 50;

function renderTable(artifact) {
  const records = Array.isArray(artifact.records) ? artifact.records : [];
  const columns = Array.isArray(artifact.columns) && artifact.columns.length
    ? artifact.columns
    : Object.keys(records[0] || {});
  const shown = records.slice(0, MAX_TABLE_ROWS);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", text: String(c) })))),
      h("tbody", {}, shown.map((row) => h("tr", {}, columns.map((c) => h("td", { text: cellText(row?.[c]) }))))),
    ),
    records.length > shown.length ? h("p", { class: "muted small", text: `…and ${records.length - shown.length} more rows` }) : null,
  );
}

/** A message's files: images as thumbnails, other files as chips (signed URLs). */
export function renderAttachments(attachments) {
  if (!attachments || !attachments.length) return null;
  return h(
    "div",
    { class: "attachments" },
    attachments.map((file) => {
      const url = safeUrl(file.url || "");
      const type = file.contentType || file.content_type || "";
      if (url && type.startsWith("image/")) {
        return h(
          "a",
          { class: "attachment-image", href: url, target: "_blank", rel: "noopener noreferrer", title: file.name },
          h("img", { src: url, alt: file.name || "image", loading: "lazy", width: file.width || null, height: file.height || null }),
        );
      }
      const meta = [type, formatSize(file.size)].filter(Boolean).join(", ");
      return h(
        "span",
        { class: "attachment-chip" },
        h("span", { class: "file-icon", "aria-hidden": "true" }),
        url ? h("a", { href: url, target: "_blank", rel: "noopener noreferrer", text: file.name || "file" }) : h("span", { text: file.name || "file" }),
        meta ? h("span", { class: "muted small", text: ` (${meta})` }) : null,
      );
    }),
  );
}

function renderFile(artifact, attachments = []) {
  // A tool's file: served through its signed URL (the message's attachment); rows from
  // before files were owned keep the URL they were stored with.
  const owned = attachments.find((file) => String(file.id) === String(artifact.file_id));
  if (owned && (owned.contentType || "").startsWith("image/")) return renderAttachments([owned]);
  const url = safeUrl(owned?.url || artifact.url || "");
  const label = artifact.name || "file";
  const meta = [artifact.mime_type, formatSize(artifact.size)].filter(Boolean).join(", ");
  return h(
    "p",
    { class: "file-ref" },
    h("span", { class: "file-icon", "aria-hidden": "true" }),
    url ? h("a", { href: url, target: "_blank", rel: "noopener noreferrer", text: label }) : h("span", { text: label }),
    meta ? h("span", { class: "muted small", text: ` (${meta})` }) : null,
  );
}

/** The body of a tool result: a table, a file link, JSON, or its text. */
function renderArtifact(artifact, text, attachments) {
  if (artifact && typeof artifact === "object") {
    if (artifact.kind === "table") return renderTable(artifact);
    if (artifact.kind === "file") return renderFile(artifact, attachments);
    if (artifact.kind === "json") return h("pre", { class: "tool-json", text: JSON.stringify(artifact.value, null, 2) });
  }
  return h("pre", { class: "tool-text", text: text || "" });
}

function toolCallsOf(message) {
  const calls = message.content?._value?.tool_calls;
  return Array.isArray(calls) ? calls : [];
}

function formatArgs(args) {
  if (!args || typeof args !== "object") return "";
  return Object.entries(args)
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(", ");
}

function statusBadge(message) {
  if (message.status === "streaming") return h("span", { class: "badge badge-live", text: "Replying…" });
  if (message.status === "cancelled") return h("span", { class: "badge", text: "Stopped" });
  if (message.status === "failed") return h("span", { class: "badge badge-error", text: "Failed" });
  if (message.status === "awaiting_approval") return h("span", { class: "badge badge-live", text: "Waiting for your approval" });
  return null;
}

/**
 * The calls of a paused reply that wait for the user: each with its name, its arguments
 * and Approve / Deny. `ctx.approvals`: those calls ({callId, name, arguments});
 * `ctx.onDecide(call, approve)`.
 */
function renderApprovals(message, ctx) {
  const calls = message.status === "awaiting_approval" ? ctx.approvals || [] : [];
  if (!calls.length) return null;
  return h(
    "div",
    { class: "approvals", role: "group", "aria-label": "Tool calls waiting for your approval" },
    calls.map((call) =>
      h(
        "div",
        { class: "approval", dataset: { callId: call.callId } },
        h("p", { class: "approval-title" }, "Allow ", h("strong", { class: "approval-name", text: call.name }), "?"),
        h("pre", { class: "approval-args", text: JSON.stringify(call.arguments ?? {}, null, 2) }),
        h(
          "div",
          { class: "approval-actions" },
          h("button", { type: "button", class: "approve", text: "Approve", "aria-label": `Approve ${call.name}`, disabled: call.deciding ? true : null, on: { click: () => ctx.onDecide?.(call, true) } }),
          h("button", { type: "button", class: "deny secondary", text: "Deny", "aria-label": `Deny ${call.name}`, disabled: call.deciding ? true : null, on: { click: () => ctx.onDecide?.(call, false) } }),
        ),
      ),
    ),
  );
}

function errorText(message) {
  const error = message.error;
  if (!error) return "The reply failed.";
  if (typeof error === "string") return error;
  return error.message || error.detail || error.code || "The reply failed.";
}

const RATINGS = [
  { rating: "up", label: "Good reply", icon: "👍" },
  { rating: "down", label: "Bad reply", icon: "👎" },
];

/** Thumbs up / down on a finished reply (pressed again: cleared), and a comment once rated. */
function renderFeedback(message, onFeedback) {
  const current = message.feedback?.rating || null;
  return h(
    "span",
    { class: "feedback", role: "group", "aria-label": "Rate this reply" },
    RATINGS.map(({ rating, label, icon }) =>
      h("button", {
        type: "button",
        class: "feedback-button",
        "aria-label": label,
        "aria-pressed": String(current === rating),
        title: label,
        text: icon,
        on: { click: () => onFeedback(message, current === rating ? null : rating) },
      })),
    current
      ? h("button", {
          type: "button",
          class: "link-button feedback-comment",
          text: message.feedback.comment ? "Edit comment" : "Add a comment",
          title: message.feedback.comment || null,
          on: { click: () => onFeedback(message, current, { comment: true }) },
        })
      : null,
  );
}

/**
 * Put a message's text into its `.msg-text`: AI replies as sanitized Markdown
 * (markdown.js), everything else as plain text. While streaming: once per frame that
 * brought text (chat.js), code not yet coloured.
 */
export function setMessageText(el, message) {
  if (message.role === "ai") fillMarkdown(el, message.text, { streaming: message.status === "streaming" });
  else el.textContent = message.text;
}

/**
 * `< i/n >` on a message with other versions: the arrows show the previous or next
 * version (`onSwitch(siblingId)`), disabled at the ends.
 */
function renderVersions(message, ctx) {
  const ids = message.siblings?.ids || [];
  if (ids.length < 2 || !ctx.onSwitch) return null;
  const index = message.siblings.index;
  const arrow = (label, text, target) =>
    h("button", {
      type: "button",
      class: "link-button version-arrow",
      text,
      "aria-label": label,
      disabled: target === undefined ? true : null,
      on: { click: () => ctx.onSwitch(target) },
    });
  return h(
    "span",
    { class: "versions", role: "group", "aria-label": "Versions of this message" },
    arrow("Previous version", "‹", ids[index - 1]),
    h("span", { class: "version-count", text: `${index + 1}/${ids.length}` }),
    arrow("Next version", "›", ids[index + 1]),
  );
}

/** The edit-in-place form of a human message: Save sends the new version (a new turn). */
function renderEditor(message, ctx) {
  const input = h("textarea", { class: "edit-input", rows: 3, "aria-label": "Edit your message" });
  input.value = message.text;
  const save = () => {
    const text = input.value.trim();
    if (text) ctx.onSaveEdit(message, text);
  };
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      save();
    } else if (event.key === "Escape") {
      ctx.onCancelEdit();
    }
  });
  queueMicrotask(() => input.focus());
  return h(
    "form",
    { class: "edit-form", on: { submit: (event) => { event.preventDefault(); save(); } } },
    input,
    h(
      "div",
      { class: "edit-actions" },
      h("button", { type: "submit", class: "btn", text: "Save and send" }),
      h("button", { type: "button", class: "btn btn-secondary", text: "Cancel", on: { click: () => ctx.onCancelEdit() } }),
    ),
  );
}

/**
 * Render one message. `ctx`: {agentName, canRegenerate, onRegenerate, onRetry,
 * onFeedback(message, rating | null, {comment}), onSwitch(siblingId),
 * editing (this message is being edited), onEdit, onSaveEdit(message, text), onCancelEdit}.
 * The text lives in `.msg-text` so deltas can update it in place.
 */
export function renderMessage(message, ctx = {}) {
  const role = message.role;
  const time = h("time", { datetime: message.createdAt || "", title: fullTime(message.createdAt), text: shortTime(message.createdAt) });

  if (role === "tool") {
    const value = message.content?._value || {};
    const name = value.name || "tool";
    const artifact = value.artifact;
    const isError = value.status === "error";
    const details = h(
      "details",
      { class: "tool-details", open: artifact && (artifact.kind === "table" || artifact.kind === "file") ? true : null },
      h("summary", {}, h("span", { class: "tool-label", text: isError ? `Tool ${name} failed` : `Tool result · ${name}` })),
      renderArtifact(artifact, message.text, message.attachments),
    );
    return h("article", { class: `msg msg-tool${isError ? " msg-tool-error" : ""}`, dataset: { id: message.id, status: message.status }, "aria-label": `Tool result from ${name}` }, details);
  }

  if (role === "system") {
    return h("article", { class: "msg msg-system", dataset: { id: message.id, status: message.status }, "aria-label": "System message" }, h("p", { text: message.text }));
  }

  const isHuman = role === "human";
  const author = isHuman ? "You" : ctx.agentName || "Assistant";
  const textEl = h("div", { class: isHuman ? "msg-text" : "msg-text markdown" });
  setMessageText(textEl, message);
  const bubbleChildren = [textEl];
  const files = renderAttachments(message.attachments);
  if (files) bubbleChildren.push(files);
  const calls = toolCallsOf(message);
  if (calls.length) {
    bubbleChildren.push(
      h("ul", { class: "tool-calls", "aria-label": "Tool calls" },
        calls.map((call) => h("li", {}, h("span", { class: "tool-call-name", text: call.name || "tool" }), h("span", { class: "tool-call-args", text: `(${formatArgs(call.args)})` })))),
    );
  }
  if (message.status === "streaming") {
    bubbleChildren.push(h("span", { class: "typing", "aria-hidden": "true" }, h("i"), h("i"), h("i")));
  }
  const hideEmpty = !message.text && !calls.length && !files && message.status !== "streaming";
  const bubble = ctx.editing
    ? h("div", { class: "bubble bubble-editing" }, renderEditor(message, ctx))
    : h("div", { class: `bubble${hideEmpty ? " bubble-empty" : ""}` }, bubbleChildren);

  const meta = h("div", { class: "msg-meta" }, renderVersions(message, ctx), time, statusBadge(message));
  if (message.pending) meta.append(h("span", { class: "badge", text: message.sendError ? "Not sent" : "Sending…" }));
  if (message.sendError && ctx.onRetry) {
    meta.append(h("button", { type: "button", class: "link-button", text: "Retry", on: { click: () => ctx.onRetry(message) } }));
  }
  if (!isHuman && ctx.onFeedback && message.status === "complete" && !message.pending) {
    meta.append(renderFeedback(message, ctx.onFeedback));
  }
  if (isHuman && ctx.onEdit && !ctx.editing && !message.pending) {
    meta.append(h("button", { type: "button", class: "link-button edit", text: "Edit", "aria-label": "Edit this message", on: { click: () => ctx.onEdit(message) } }));
  }
  if (!isHuman && ctx.canRegenerate && ctx.onRegenerate) {
    meta.append(h("button", { type: "button", class: "link-button regenerate", text: "Regenerate", "aria-label": "Regenerate this reply", on: { click: () => ctx.onRegenerate(message) } }));
  }

  const article = h(
    "article",
    {
      class: `msg ${isHuman ? "msg-human" : "msg-ai"}`,
      dataset: { id: message.id, status: message.status, role },
      "aria-label": `${author}, ${fullTime(message.createdAt)}`,
      "aria-busy": message.status === "streaming" ? "true" : null,
    },
    isHuman ? null : h("div", { class: "msg-author", text: author }),
    bubble,
    message.status === "failed" ? h("p", { class: "msg-error", text: errorText(message) }) : null,
    message.sendError ? h("p", { class: "msg-error", text: message.sendError }) : null,
    renderApprovals(message, ctx),
    meta,
  );
  return article;
}
