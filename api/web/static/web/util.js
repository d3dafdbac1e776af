// Small shared helpers: ids, conversation normalisation, toasts and announcements.

import { $ } from "./dom.js";

/** A v4 UUID; crypto.randomUUID only exists in secure contexts (https, localhost). */
export function uuid() {
  if (window.crypto?.randomUUID) {
    try {
      return window.crypto.randomUUID();
    } catch {
      // Insecure context: fall through.
    }
  }
  const bytes = window.crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function parseJson(value) {
  if (typeof value !== "string") return value;
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

/** The app's conversation object from a GraphQL Conversation. */
export function normalizeConversation(raw) {
  const context = parseJson(raw.context);
  return {
    id: String(raw.id),
    title: raw.title || "",
    agentSlug: raw.agent?.slug || "",
    agentName: raw.agent?.name || raw.agent?.slug || "Agent",
    context: context && typeof context === "object" ? context : {},
    model: raw.model ?? "",
    archived: Boolean(raw.archived ?? raw.archivedAt),
    archivedAt: raw.archivedAt ?? null,
    lastMessageAt: raw.lastMessageAt ?? null,
    messageCount: raw.messageCount ?? 0,
    activeTurnId: raw.activeTurnId ?? null,
    projectId: raw.projectId != null ? String(raw.projectId) : null,
    pinned: Boolean(raw.pinned),
    createdAt: raw.createdAt ?? null,
    updatedAt: raw.updatedAt ?? null,
    lastMessage: raw.lastMessage
      ? {
          text: raw.lastMessage.text || "",
          role: String(raw.lastMessage.role || "").toLowerCase(),
          status: String(raw.lastMessage.status || "").toLowerCase(),
        }
      : raw.lastMessage === null
        ? null
        : undefined,
  };
}

/** Merge a new conversation snapshot into an old one (fields a snapshot lacks are kept). */
export function mergeConversation(old, fresh) {
  if (!old) return fresh;
  const merged = { ...old, ...fresh };
  if (fresh.lastMessage === undefined) merged.lastMessage = old.lastMessage;
  return merged;
}

export function conversationTitle(conversation) {
  return conversation.title || conversation.agentName || "Conversation";
}

export function activityTime(conversation) {
  return conversation.lastMessageAt || conversation.createdAt || "";
}

/** Compare message ids: numerically when both are numbers, else equal (keep arrival order). */
export function compareIds(a, b) {
  if (/^\d+$/.test(a) && /^\d+$/.test(b)) {
    if (a.length !== b.length) return a.length - b.length;
    return a < b ? -1 : a > b ? 1 : 0;
  }
  return 0;
}

let toastTimer = null;

/** A short visible notice (also read by screen readers: the toast is role=status). */
export function toast(message, { error = false } = {}) {
  const el = $("#toast");
  el.textContent = message;
  el.classList.toggle("toast-error", error);
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    el.hidden = true;
  }, error ? 6000 : 3500);
}

/** Tell screen-reader users about a change that has no visible text of its own. */
export function announce(message) {
  const el = $("#announcer");
  el.textContent = "";
  // A new text node in a fresh task is announced even when it repeats.
  setTimeout(() => {
    el.textContent = message;
  }, 50);
}
