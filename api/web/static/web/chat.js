// The open conversation: history paging, live events, sending, stop, regenerate.

import { ApiError, checkPayload, restPost, restRequest, uploadFile } from "./api.js";
import { $, askDialog, h, setChildren } from "./dom.js";
import { applyDelta, isFinal, mergeMessage, normalizeMessage, renderMessage, setMessageText } from "./messages.js";
import * as Q from "./queries.js";
import { announce, compareIds, conversationTitle, mergeConversation, normalizeConversation, toast, uuid } from "./util.js";

const PAGE_SIZE = 30;
// How long to wait for the subscription's first event before loading anyway.
const SYNC_TIMEOUT = 4000;
// How soon to refetch a reply whose live deltas start past the text we hold.
const GAP_REFRESH_MS = 700;
// Load older history when the reader is this close to the top (px).
const TOP_THRESHOLD = 150;
// Follow new text when the reader is this close to the bottom (px).
const BOTTOM_THRESHOLD = 120;

// What the server accepts (it checks the bytes; this only spares a useless upload).
const MAX_FILES = 10;
const MAX_FILE_BYTES = 20_000_000;

const delay = (ms) => new Promise((resolve) => setTimeout(() => resolve(null), ms));

/** The feedback dialog: resolves the comment, or null when cancelled. */
async function askFeedbackComment(current) {
  const input = $("#feedback-comment");
  input.value = current;
  return (await askDialog($("#feedback-dialog"), input)) ? input.value.trim() : null;
}

export class ChatView {
  /**
   * @param {object} deps {gql, ws, onConversation(conversation), onGone(id, reason),
   *   onReplyEnded(conversation, message): an AI reply ended complete or failed}
   */
  constructor({ gql, ws, onConversation, onGone, getAgent = () => null, onReplyEnded = () => {} }) {
    this.gql = gql;
    this.apiUrl = document.body.dataset.apiUrl || "/api/v1/";
    this.onReplyEnded = onReplyEnded;
    this.getAgent = getAgent;
    this.ws = ws;
    this.onConversation = onConversation;
    this.onGone = onGone;
    this.el = {
      pane: $("#chat-pane"),
      empty: $("#chat-empty"),
      title: $("#chat-title"),
      subtitle: $("#chat-subtitle"),
      scroller: $("#message-scroller"),
      messages: $("#messages"),
      history: $("#history-status"),
      form: $("#composer"),
      input: $("#composer-input"),
      send: $("#send"),
      stop: $("#stop"),
      archiveItem: $("#menu-archive"),
      pinItem: $("#menu-pin"),
      attach: $("#attach"),
      attachInput: $("#attach-input"),
      files: $("#composer-files"),
      model: $("#chat-model"),
    };
    // Files chosen, pasted or dropped for the next message: {file, previewUrl}.
    this.pendingFiles = [];
    // The model registry (GraphQL `models`), loaded once when a conversation opens.
    this.models = null;
    this.current = null;
    this.sending = false;
    this.stopping = false;
    this._bind();
  }

  // ------------------------------------------------------------ lifecycle

  /** Show conversation `id` (`known`: a list snapshot to paint the header at once). */
  async open(id, known = null) {
    if (this.current?.id === id) return;
    this.close();
    const cur = {
      id,
      conversation: known,
      messages: [],
      byId: new Map(),
      els: new Map(),
      hasOlder: false,
      startCursor: null,
      loadingOlder: false,
      ready: false,
      buffer: [],
      unsubscribe: null,
      lastAiId: null,
      // Tool calls waiting for the user's approval: callId -> {callId, name, arguments, messageId}.
      approvals: new Map(),
    };
    this.current = cur;
    this.sending = false;
    this.stopping = false;
    this.el.empty.hidden = true;
    this.el.pane.hidden = false;
    setChildren(this.el.messages);
    this.el.history.textContent = "Loading…";
    this._renderHeader();
    this._updateComposer();

    // Subscribe first and wait for its first event, a ConversationUpdated
    // snapshot sent once the server listens: history loaded after it misses
    // nothing, and later events are buffered until the history is shown.
    const synced = new Promise((resolve) => {
      cur.onSync = resolve;
    });
    cur.unsubscribe = this.ws.subscribe(
      { query: Q.CONVERSATION_EVENTS, variables: { conversationId: id } },
      {
        next: (result) => this._onEvent(cur, result),
        error: (errors) => this._onSubscriptionError(cur, errors),
        complete: () => this._onSubscriptionComplete(cur),
        resubscribed: () => {
          cur.awaitingSync = true;
        },
      },
    );
    try {
      // Without live updates (websocket down) the history still loads.
      const snapshot = await Promise.race([synced, delay(SYNC_TIMEOUT)]);
      if (this.current !== cur) return;
      cur.loadStarted = true;
      const [conversationData, messagesData] = await Promise.all([
        snapshot ? null : this.gql.request(Q.CONVERSATION, { id }),
        this.gql.request(Q.MESSAGES, { conversationId: id, last: PAGE_SIZE }),
      ]);
      if (this.current !== cur) return;
      this._setConversation(snapshot || normalizeConversation(conversationData.conversation));
      this._takePage(cur, messagesData.messages, "replace");
      cur.ready = true;
      for (const event of cur.buffer.splice(0)) this._apply(cur, event);
      this._loadApprovals(cur);
      this._renderAll();
      this._scrollToBottom();
      this._fillViewport();
      if (cur.catchUpWhenReady) this._catchUp(cur);
    } catch (error) {
      if (this.current !== cur) return;
      if (error instanceof ApiError && error.code === "NOT_FOUND") {
        this.onGone(id, "This conversation does not exist.");
        return;
      }
      this.el.history.textContent = "";
      setChildren(
        this.el.messages,
        h("div", { class: "load-error" },
          h("p", { text: `Could not load this conversation: ${error.message}` }),
          h("button", { type: "button", class: "btn btn-secondary", text: "Try again", on: { click: () => { this.close(); this.open(id, known); } } })),
      );
    }
  }

  close() {
    const cur = this.current;
    if (cur?.unsubscribe) cur.unsubscribe();
    this.current = null;
    this.el.pane.hidden = true;
    this.el.empty.hidden = false;
    setChildren(this.el.messages);
  }

  get conversation() {
    return this.current?.conversation || null;
  }

  /** A conversation snapshot from elsewhere (list subscription, mutations). */
  updateConversation(conversation) {
    if (this.current?.id !== conversation.id) return;
    this._setConversation(conversation);
  }

  refreshHeader() {
    if (this.current) this._renderHeader();
  }

  focusComposer() {
    this.el.input.focus();
  }

  // ------------------------------------------------------------ events

  _onEvent(cur, result) {
    if (this.current !== cur) return;
    if (result?.errors?.length) {
      this._onSubscriptionError(cur, result.errors);
      return;
    }
    const event = result?.data?.conversationEvents;
    if (!event) return;
    if (cur.onSync) {
      // The first event of the subscription: the snapshot that opens the view.
      const resolve = cur.onSync;
      cur.onSync = null;
      const snapshot = event.conversation ? normalizeConversation(event.conversation) : null;
      if (!cur.loadStarted) {
        resolve(snapshot);
        return;
      }
      // History was loaded without waiting (slow websocket): catch up from here.
      if (snapshot) this._setConversation(snapshot);
      if (cur.ready) this._catchUp(cur);
      else cur.catchUpWhenReady = true;
      return;
    }
    if (!cur.ready) {
      cur.buffer.push(event);
      return;
    }
    const follow = this._nearBottom();
    this._apply(cur, event);
    if (follow) this._scrollToBottom();
    if (cur.awaitingSync) {
      // First event after a reconnect: from here on nothing is missed; fetch what was.
      cur.awaitingSync = false;
      this._catchUp(cur);
    }
  }

  _onSubscriptionError(cur, errors) {
    if (this.current !== cur) return;
    const code = errors?.[0]?.extensions?.code;
    if (code === "NOT_FOUND") this.onGone(cur.id, "This conversation does not exist.");
    else toast(`Live updates stopped: ${errors?.[0]?.message || "error"}`, { error: true });
  }

  /** The server ends the stream after ConversationDeleted. */
  _onSubscriptionComplete(cur) {
    if (this.current === cur) this.onGone(cur.id, "This conversation was deleted.");
  }

  /** Apply one conversationEvents payload. */
  _apply(cur, event) {
    switch (event.__typename) {
      case "MessageCreated":
        this._upsert(cur, normalizeMessage(event.message));
        break;
      case "MessageDelta":
        this._delta(cur, event);
        break;
      case "MessageCompleted": {
        const message = normalizeMessage(event.message);
        this._upsert(cur, message);
        if (message.role === "ai" && message.status === "cancelled") announce("Reply stopped.");
        if (message.role === "ai" && message.status === "complete") this.onReplyEnded(cur.conversation, message);
        break;
      }
      case "MessageFailed": {
        const message = normalizeMessage(event.message);
        if (!message.error && event.error) message.error = event.error;
        this._upsert(cur, message);
        announce(`The reply failed: ${event.error?.message || "error"}`);
        this.onReplyEnded(cur.conversation, message);
        break;
      }
      case "MessageDeleted":
        for (const id of event.messageIds || []) this._remove(cur, String(id));
        break;
      case "ConversationBranchChanged":
        // Another version became the active branch (here or on another device).
        this._setConversation(normalizeConversation(event.conversation));
        this._reloadBranch(cur);
        break;
      case "ConversationUpdated":
        this._setConversation(normalizeConversation(event.conversation));
        break;
      case "ConversationCleared":
        this._setConversation(normalizeConversation(event.conversation));
        this._clearMessages(cur);
        break;
      case "ConversationDeleted":
        this.onGone(cur.id, "This conversation was deleted.");
        break;
      case "ToolApprovalRequested":
        for (const call of event.calls || []) {
          if (!call.decision) cur.approvals.set(String(call.callId), { ...call, callId: String(call.callId), messageId: String(event.messageId) });
        }
        this._rerenderById(cur, String(event.messageId));
        announce("A tool call is waiting for your approval.");
        break;
      case "ToolApprovalDecided":
        cur.approvals.delete(String(event.call?.callId));
        this._rerenderById(cur, String(event.messageId));
        break;
      default:
        break;
    }
    this._updateComposer();
  }

  _delta(cur, event) {
    const id = String(event.messageId);
    let message = cur.byId.get(id);
    if (!message) {
      // The delta overtook its message.created (or we joined mid-turn): start
      // a placeholder; the completion snapshot fixes anything we missed.
      if (event.offset !== 0) return;
      this._upsert(cur, normalizeMessage({ id, role: "ai", status: "streaming", text: "", conversationId: cur.id, createdAt: new Date().toISOString() }));
      message = cur.byId.get(id);
    }
    if (event.offset > message.cp) {
      // A gap: we joined mid-reply and the stored partial text is older than
      // the first delta we got. The server saves partial text every fraction of
      // a second: fetch it again (throttled) rather than wait for the end.
      this._scheduleCatchUp(cur);
      return;
    }
    if (applyDelta(message, event.offset, event.delta)) this._renderTextSoon(cur, id);
  }

  /**
   * Re-render a streaming message's text at the next frame, once however many deltas
   * arrived before it: a reply is Markdown, rendered whole (its length grows with
   * every delta, so rendering per delta cost the square of the reply).
   */
  _renderTextSoon(cur, id) {
    cur.dirty ??= new Set();
    cur.dirty.add(id);
    if (cur.frame) return;
    cur.frame = requestAnimationFrame(() => {
      cur.frame = null;
      if (this.current !== cur) return;
      const follow = this._nearBottom();
      for (const dirtyId of cur.dirty) {
        const message = cur.byId.get(dirtyId);
        const textEl = cur.els.get(dirtyId)?.querySelector(".msg-text");
        if (!message) continue;
        if (textEl) setMessageText(textEl, message);
        else this._rerender(cur, message);
      }
      cur.dirty.clear();
      if (follow) this._scrollToBottom();
    });
  }

  _scheduleCatchUp(cur) {
    if (cur.catchUpTimer) return;
    cur.catchUpTimer = setTimeout(() => {
      cur.catchUpTimer = null;
      if (this.current === cur) this._catchUp(cur);
    }, GAP_REFRESH_MS);
  }

  /** A reconnect may have missed events: reload the newest page and merge it. */
  async _catchUp(cur) {
    try {
      const messagesData = await this.gql.request(Q.MESSAGES, { conversationId: cur.id, last: PAGE_SIZE });
      if (this.current !== cur) return;
      const page = messagesData.messages;
      const fresh = page.edges.map((edge) => normalizeMessage(edge.node));
      const overlaps = fresh.length === 0 || fresh.some((m) => cur.byId.has(m.id)) || cur.messages.length === 0;
      if (!overlaps) {
        // We were away long enough to miss a whole page: start from this page.
        this._takePage(cur, page, "replace");
        this._renderAll();
        this._scrollToBottom();
      } else {
        const freshIds = new Set(fresh.map((m) => m.id));
        const oldestFresh = fresh[0]?.id;
        // Messages we hold inside the fresh page's range that the server no
        // longer has were deleted (clear, regenerate) while we were away.
        for (const message of [...cur.messages]) {
          if (message.pending) continue;
          if (!freshIds.has(message.id) && (oldestFresh === undefined || compareIds(message.id, oldestFresh) > 0)) this._remove(cur, message.id);
        }
        for (const message of fresh) this._upsert(cur, message);
      }
      this._loadApprovals(cur);
      this._updateComposer();
    } catch {
      // The next reconnect or event will try again.
    }
  }

  /**
   * Show the newest page of the active branch again (after a branch change): what we
   * hold of a message is merged with the page's copy, so text a live reply's deltas
   * brought while the page was on its way is kept.
   */
  async _reloadBranch(cur) {
    try {
      const data = await this.gql.request(Q.MESSAGES, { conversationId: cur.id, last: PAGE_SIZE });
      if (this.current !== cur) return;
      const page = data.messages;
      const held = cur.byId;
      const pending = cur.messages.filter((m) => m.pending);
      const messages = page.edges.map((edge) => {
        const fresh = normalizeMessage(edge.node);
        const local = held.get(fresh.id);
        return local ? { ...mergeMessage(local, fresh) } : fresh;
      });
      cur.messages = messages.concat(pending);
      cur.byId = new Map(cur.messages.map((m) => [m.id, m]));
      cur.hasOlder = Boolean(page.pageInfo?.hasPreviousPage);
      cur.startCursor = page.pageInfo?.startCursor || null;
      const follow = this._nearBottom();
      this._renderAll();
      if (follow) this._scrollToBottom();
      this._updateComposer();
    } catch {
      // The next event or reconnect reloads.
    }
  }

  /** Drop what is shown after `parentId` (null: everything): a new version replaces that part of the branch. */
  _truncateAfter(cur, parentId) {
    for (const message of [...cur.messages]) {
      if (message.pending) continue;
      if (parentId === null || compareIds(message.id, parentId) > 0) this._remove(cur, message.id);
    }
  }

  // ------------------------------------------------------------ messages

  _takePage(cur, page, mode) {
    const messages = page.edges.map((edge) => normalizeMessage(edge.node));
    if (mode === "replace") {
      cur.messages = messages;
      cur.byId = new Map(messages.map((m) => [m.id, m]));
      cur.els.clear();
    } else {
      const added = messages.filter((m) => !cur.byId.has(m.id));
      for (const message of added) cur.byId.set(message.id, message);
      cur.messages = added.concat(cur.messages);
    }
    cur.hasOlder = Boolean(page.pageInfo?.hasPreviousPage);
    cur.startCursor = page.pageInfo?.startCursor || cur.startCursor;
    this._renderHistoryStatus();
  }

  /** Insert or update a message, keeping id order and the DOM in step. */
  _upsert(cur, incoming) {
    // The server's copy of a message we are still showing as "sending".
    if (incoming.clientMessageId) {
      const local = cur.byId.get(`local-${incoming.clientMessageId}`);
      if (local) this._remove(cur, local.id);
    }
    const existing = cur.byId.get(incoming.id);
    if (existing) {
      const merged = mergeMessage(existing, incoming);
      if (merged === existing) return;
      Object.assign(existing, merged);
      this._rerender(cur, existing);
      return;
    }
    const message = { ...incoming };
    cur.byId.set(message.id, message);
    let index = cur.messages.length;
    if (!message.pending) {
      while (index > 0) {
        const before = cur.messages[index - 1];
        if (before.pending || compareIds(before.id, message.id) > 0) index -= 1;
        else break;
      }
    }
    cur.messages.splice(index, 0, message);
    if (!cur.ready) return;
    const el = this._renderOne(cur, message);
    const next = cur.messages[index + 1];
    const nextEl = next ? cur.els.get(next.id) : null;
    if (nextEl) this.el.messages.insertBefore(el, nextEl);
    else this.el.messages.append(el);
    this._renderEmptyHint(cur);
  }

  _remove(cur, id) {
    const message = cur.byId.get(id);
    if (!message) return;
    cur.byId.delete(id);
    cur.messages = cur.messages.filter((m) => m !== message);
    cur.els.get(id)?.remove();
    cur.els.delete(id);
    this._renderEmptyHint(cur);
  }

  _clearMessages(cur) {
    cur.messages = cur.messages.filter((m) => m.pending);
    cur.byId = new Map(cur.messages.map((m) => [m.id, m]));
    cur.hasOlder = false;
    cur.startCursor = null;
    this._renderAll();
  }

  async _loadOlder() {
    const cur = this.current;
    if (!cur || !cur.ready || !cur.hasOlder || cur.loadingOlder || !cur.startCursor) return;
    cur.loadingOlder = true;
    this.el.history.textContent = "Loading earlier messages…";
    try {
      const data = await this.gql.request(Q.MESSAGES, { conversationId: cur.id, last: PAGE_SIZE, before: cur.startCursor });
      if (this.current !== cur) return;
      const scroller = this.el.scroller;
      const fromBottom = scroller.scrollHeight - scroller.scrollTop;
      const before = new Set(cur.messages);
      this._takePage(cur, data.messages, "prepend");
      const added = cur.messages.filter((m) => !before.has(m));
      const first = this.el.messages.firstChild;
      const fragment = document.createDocumentFragment();
      for (const message of added) fragment.append(this._renderOne(cur, message));
      this.el.messages.insertBefore(fragment, first);
      // Keep the reader's place: the content above grew, so move down with it.
      scroller.scrollTop = scroller.scrollHeight - fromBottom;
    } catch (error) {
      this.el.history.textContent = `Could not load earlier messages: ${error.message}`;
      return;
    } finally {
      cur.loadingOlder = false;
    }
    this._renderHistoryStatus();
    this._fillViewport();
  }

  /** Keep loading while the history does not fill the view (no scrollbar, no scroll event). */
  _fillViewport() {
    const cur = this.current;
    if (!cur || !cur.hasOlder) return;
    const scroller = this.el.scroller;
    if (scroller.scrollHeight <= scroller.clientHeight + TOP_THRESHOLD) this._loadOlder();
  }

  // ------------------------------------------------------------ actions

  async send(text) {
    const cur = this.current;
    const content = text.trim();
    const files = this.pendingFiles;
    if (!cur || (!content && !files.length) || this._busy()) return false;
    const clientMessageId = uuid();
    const local = normalizeMessage({
      id: `local-${clientMessageId}`,
      role: "human",
      status: "complete",
      text: content,
      clientMessageId,
      createdAt: new Date().toISOString(),
      attachments: files.map(({ file, previewUrl }) => ({ name: file.name, contentType: file.type, size: file.size, url: previewUrl })),
    });
    local.pending = true;
    local.files = files;
    this.pendingFiles = [];
    this._renderPendingFiles();
    this._upsert(cur, local);
    this._scrollToBottom();
    await this._deliver(cur, local);
    return true;
  }

  /** Send (or re-send) a local message; the same clientMessageId never makes two turns. */
  async _deliver(cur, local) {
    local.sendError = null;
    this._rerender(cur, local);
    this.sending = true;
    this._updateComposer();
    try {
      // Upload first (once: a retry reuses the ids), then send the ids with the text.
      if (local.files?.length && !local.fileIds) {
        const token = this.gql.getToken();
        const uploaded = [];
        for (const { file } of local.files) uploaded.push(await uploadFile(this.apiUrl, file, token));
        local.fileIds = uploaded.map((file) => file.id);
      }
      const data = await this.gql.request(Q.SEND_MESSAGE, {
        conversationId: cur.id,
        content: local.text,
        clientMessageId: local.clientMessageId,
        attachments: local.fileIds?.length ? local.fileIds : null,
      });
      const payload = checkPayload(data.sendMessage);
      if (this.current !== cur) return;
      for (const { previewUrl } of local.files || []) URL.revokeObjectURL(previewUrl);
      if (payload.humanMessage) this._upsert(cur, normalizeMessage(payload.humanMessage));
      if (payload.aiMessage) this._upsert(cur, normalizeMessage(payload.aiMessage));
      this._scrollToBottom();
    } catch (error) {
      if (this.current !== cur) return;
      local.sendError = error.code === "TURN_IN_PROGRESS" ? "A reply is still running. Wait for it or stop it, then retry." : `Not sent: ${error.message}`;
      this._rerender(cur, local);
      announce(local.sendError);
    } finally {
      this.sending = false;
      this._updateComposer();
    }
  }

  async stop() {
    const cur = this.current;
    if (!cur || this.stopping) return;
    this.stopping = true;
    this._updateComposer();
    try {
      const data = await this.gql.request(Q.CANCEL_TURN, { conversationId: cur.id });
      checkPayload(data.cancelTurn);
    } catch (error) {
      if (error.code !== "NO_ACTIVE_TURN") toast(`Could not stop: ${error.message}`, { error: true });
    } finally {
      this.stopping = false;
      this._updateComposer();
    }
  }

  /** The pending tool calls of a conversation with a paused reply (history, reconnects). */
  async _loadApprovals(cur) {
    if (!cur.messages.some((m) => m.status === "awaiting_approval")) {
      cur.approvals.clear();
      return;
    }
    try {
      const calls = await restRequest(this.apiUrl, "GET", `conversations/${cur.id}/tool-calls/`, null, this.gql.getToken());
      if (this.current !== cur) return;
      cur.approvals.clear();
      for (const call of calls) {
        cur.approvals.set(call.call_id, { callId: call.call_id, name: call.name, arguments: call.arguments, messageId: String(call.message_id) });
      }
      for (const message of cur.messages) if (message.status === "awaiting_approval") this._rerenderById(cur, message.id);
    } catch {
      // The next event or reconnect tries again.
    }
  }

  /** Approve or deny a waiting tool call (REST); the turn resumes on the server. */
  async decide(call, approve) {
    const cur = this.current;
    if (!cur || call.deciding) return;
    call.deciding = true;
    this._rerenderById(cur, call.messageId);
    const path = `conversations/${cur.id}/tool-calls/${encodeURIComponent(call.callId)}/${approve ? "approve" : "deny"}/`;
    try {
      await restPost(this.apiUrl, path, {}, this.gql.getToken());
      cur.approvals.delete(call.callId);
      announce(approve ? `${call.name} approved.` : `${call.name} denied.`);
    } catch (error) {
      if (error.code === "TOOL_CALL_ALREADY_DECIDED" || error.code === "NOT_FOUND") {
        cur.approvals.delete(call.callId);
        toast("This tool call was already decided.");
      } else {
        toast(`Could not ${approve ? "approve" : "deny"}: ${error.message}`, { error: true });
      }
    } finally {
      call.deciding = false;
      if (this.current === cur) this._rerenderById(cur, call.messageId);
    }
  }

  _rerenderById(cur, id) {
    const message = cur.byId.get(id);
    if (message) this._rerender(cur, message);
  }

  /** A new reply to the last human message; the old one stays as its sibling (`< 1/2 >`). */
  async regenerate() {
    const cur = this.current;
    if (!cur || this._busy()) return;
    this.sending = true;
    this._updateComposer();
    try {
      const data = await this.gql.request(Q.REGENERATE, { conversationId: cur.id });
      const payload = checkPayload(data.regenerate);
      if (this.current === cur && payload.aiMessage) this._showNewVersion(cur, [payload.aiMessage]);
      this._scrollToBottom();
    } catch (error) {
      toast(`Could not regenerate: ${error.message}`, { error: true });
    } finally {
      this.sending = false;
      this._updateComposer();
    }
  }

  /** Show the messages a regenerate or an edit started, in place of the branch after their parent. */
  _showNewVersion(cur, rawMessages) {
    const messages = rawMessages.filter(Boolean).map(normalizeMessage);
    this._truncateAfter(cur, messages[0].parentId);
    for (const message of messages) this._upsert(cur, message);
  }

  /** Show another version of a message (`< i/n >`): the newest branch under it becomes active. */
  async switchBranch(messageId) {
    const cur = this.current;
    if (!cur) return;
    if (this._busy()) {
      toast("Wait for the running reply to finish, or stop it.");
      return;
    }
    try {
      const data = await this.gql.request(Q.SWITCH_BRANCH, { id: cur.id, messageId });
      const payload = checkPayload(data.switchBranch);
      if (this.current !== cur) return;
      if (payload.conversation) this._setConversation(normalizeConversation(payload.conversation));
      await this._reloadBranch(cur);
    } catch (error) {
      toast(`Could not show that version: ${error.message}`, { error: true });
    }
  }

  /** Edit a human message in place (the form replaces its bubble). */
  startEdit(message) {
    const cur = this.current;
    if (!cur) return;
    if (this._busy()) {
      toast("Wait for the running reply to finish, or stop it.");
      return;
    }
    const previous = cur.editingId ? cur.byId.get(cur.editingId) : null;
    cur.editingId = message.id;
    if (previous) this._rerender(cur, previous);
    this._rerender(cur, message);
  }

  cancelEdit() {
    const cur = this.current;
    if (!cur?.editingId) return;
    const message = cur.byId.get(cur.editingId);
    cur.editingId = null;
    if (message) this._rerender(cur, message);
  }

  /** Send the edited text: a new version of the message (its sibling) and a reply to it. */
  async saveEdit(message, text) {
    const cur = this.current;
    if (!cur || this._busy()) return;
    cur.editingId = null;
    this._rerender(cur, message);
    this.sending = true;
    this._updateComposer();
    try {
      const data = await this.gql.request(Q.EDIT_MESSAGE, { conversationId: cur.id, messageId: message.id, content: text, clientMessageId: uuid() });
      const payload = checkPayload(data.editMessage);
      if (this.current === cur && payload.humanMessage) this._showNewVersion(cur, [payload.humanMessage, payload.aiMessage]);
      this._scrollToBottom();
    } catch (error) {
      toast(`Could not send the edit: ${error.message}`, { error: true });
    } finally {
      this.sending = false;
      this._updateComposer();
    }
  }

  /** Rate a reply (`rating` "up" / "down", null clears it); `comment`: ask for one first. */
  async rate(cur, message, rating, { comment = false } = {}) {
    let text = message.feedback?.comment || "";
    if (comment) {
      const answer = await askFeedbackComment(text);
      if (answer === null) return;
      text = answer;
    }
    try {
      const ids = { conversationId: cur.id, messageId: message.id };
      const payload = rating
        ? checkPayload((await this.gql.request(Q.SET_FEEDBACK, { ...ids, rating: rating.toUpperCase(), comment: text })).setMessageFeedback)
        : checkPayload((await this.gql.request(Q.CLEAR_FEEDBACK, ids)).clearMessageFeedback);
      const held = cur.byId.get(message.id);
      if (held && payload.message) {
        held.feedback = normalizeMessage(payload.message).feedback;
        if (this.current === cur) this._rerender(cur, held);
      }
      announce(rating ? "Thanks for the feedback." : "Rating removed.");
    } catch (error) {
      toast(`Could not save the rating: ${error.message}`, { error: true });
    }
  }

  /** After clearConversation succeeded. */
  cleared(conversation) {
    if (this.current?.id !== conversation.id) return;
    this._setConversation(conversation);
    this._clearMessages(this.current);
  }

  // ------------------------------------------------------------ rendering

  _setConversation(conversation) {
    const cur = this.current;
    if (!cur || cur.id !== conversation.id) return;
    cur.conversation = mergeConversation(cur.conversation, conversation);
    this._renderHeader();
    this._updateComposer();
    this.onConversation(cur.conversation);
  }

  _renderHeader() {
    const conversation = this.current?.conversation;
    if (!conversation) {
      this.el.title.textContent = "Loading…";
      this.el.subtitle.textContent = "";
      return;
    }
    this.el.title.textContent = conversationTitle(conversation);
    const parts = [conversation.agentName];
    // In the agent's order of variables (JSON objects come back in any order).
    const context = conversation.context || {};
    const order = (this.getAgent(conversation.agentSlug)?.contextVariables || []).map((v) => v.name);
    const keys = [...order.filter((k) => k in context), ...Object.keys(context).filter((k) => !order.includes(k))];
    for (const key of keys) parts.push(`${key}: ${typeof context[key] === "string" ? context[key] : JSON.stringify(context[key])}`);
    if (conversation.archived) parts.push("Archived");
    this.el.subtitle.textContent = parts.join(" · ");
    this.el.subtitle.title = this.el.subtitle.textContent;
    this.el.archiveItem.textContent = conversation.archived ? "Unarchive" : "Archive";
    this.el.pinItem.textContent = conversation.pinned ? "Unpin" : "Pin";
    this._renderModelPicker(conversation);
    document.title = `${conversationTitle(conversation)} · Confab`;
  }

  /** The model select: the registry's models, the conversation's selected (docs/web.md). */
  _renderModelPicker(conversation) {
    const select = this.el.model;
    if (this.models === null) {
      this.models = [];
      this.gql
        .request(Q.MODELS)
        .then((data) => {
          this.models = data.models || [];
          if (this.current?.conversation) this._renderModelPicker(this.current.conversation);
        })
        .catch(() => {
          this.models = null; // retried on the next header render
        });
      return;
    }
    const names = this.models.map((m) => m.name);
    const options = this.models.map((m) => h("option", { value: m.name }, m.label || m.name));
    // A model outside the registry (an agent's own) is still shown as the current one.
    if (conversation.model && !names.includes(conversation.model)) {
      options.unshift(h("option", { value: conversation.model }, conversation.model));
    }
    setChildren(select, options);
    select.value = conversation.model || "";
    select.hidden = options.length === 0;
  }

  async _setModel(model) {
    const cur = this.current;
    if (!cur) return;
    const previous = cur.conversation?.model || "";
    try {
      const data = await this.gql.request(Q.SET_MODEL, { id: cur.id, model });
      const payload = checkPayload(data.updateConversation);
      if (payload.conversation) this._setConversation(normalizeConversation(payload.conversation));
      announce(`Model: ${model}`);
    } catch (error) {
      this.el.model.value = previous;
      toast(`Could not change the model: ${error.message}`, { error: true });
    }
  }

  _renderAll() {
    const cur = this.current;
    if (!cur) return;
    cur.els.clear();
    cur.lastAiId = this._lastAiId(cur);
    cur.regenerateKey = null;
    setChildren(this.el.messages, cur.messages.map((m) => this._renderOne(cur, m)));
    this._renderHistoryStatus();
    this._renderEmptyHint(cur);
  }

  _renderEmptyHint(cur) {
    const hint = this.el.messages.querySelector(".messages-empty");
    if (cur.messages.length === 0 && cur.ready) {
      if (!hint) {
        const name = cur.conversation?.agentName || "the agent";
        this.el.messages.append(h("p", { class: "messages-empty muted", text: `Say something to start talking with ${name}.` }));
      }
    } else if (hint) {
      hint.remove();
    }
  }

  _renderHistoryStatus() {
    const cur = this.current;
    if (!cur) return;
    this.el.history.textContent = cur.hasOlder ? "" : cur.messages.length ? "Beginning of the conversation" : "";
  }

  _renderOne(cur, message) {
    const el = renderMessage(message, {
      agentName: cur.conversation?.agentName,
      canRegenerate: message.id === cur.lastAiId && isFinal(message) && !this._busy(),
      onRegenerate: () => this.regenerate(),
      approvals: [...cur.approvals.values()].filter((call) => call.messageId === message.id),
      onDecide: (call, approve) => this.decide(call, approve),
      onFeedback: (m, rating, options) => this.rate(cur, m, rating, options),
      onSwitch: (siblingId) => this.switchBranch(siblingId),
      editing: cur.editingId === message.id,
      onEdit: (m) => this.startEdit(m),
      onSaveEdit: (m, text) => this.saveEdit(m, text),
      onCancelEdit: () => this.cancelEdit(),
      onRetry: (m) => {
        if (this._busy()) toast("Wait for the running reply to finish, or stop it.");
        else this._deliver(cur, m);
      },
    });
    cur.els.set(message.id, el);
    return el;
  }

  _rerender(cur, message) {
    const old = cur.els.get(message.id);
    if (!old) return;
    old.replaceWith(this._renderOne(cur, message));
  }

  _lastAiId(cur) {
    const last = cur.messages.findLast((m) => !m.pending);
    return last && last.role === "ai" ? last.id : null;
  }

  /** Only the newest reply offers Regenerate, and only when nothing is running. */
  _refreshRegenerate(cur) {
    if (!cur || this.current !== cur || !cur.ready) return;
    const lastAi = this._lastAiId(cur);
    const message = lastAi ? cur.byId.get(lastAi) : null;
    const key = `${lastAi}|${Boolean(message && isFinal(message) && !this._busy())}`;
    if (key === cur.regenerateKey) return;
    const previous = cur.lastAiId;
    cur.lastAiId = lastAi;
    cur.regenerateKey = key;
    for (const id of new Set([previous, lastAi])) {
      const target = id ? cur.byId.get(id) : null;
      if (target) this._rerender(cur, target);
    }
  }

  /** Queue files for the next message (thumbnails for images). */
  addFiles(files) {
    for (const file of files) {
      if (this.pendingFiles.length >= MAX_FILES) {
        toast(`At most ${MAX_FILES} files per message.`);
        break;
      }
      if (file.size > MAX_FILE_BYTES) {
        toast(`${file.name} is larger than 20 MB.`);
        continue;
      }
      const previewUrl = file.type.startsWith("image/") ? URL.createObjectURL(file) : "";
      this.pendingFiles.push({ file, previewUrl });
    }
    this._renderPendingFiles();
    this._updateComposer();
  }

  _renderPendingFiles() {
    const box = this.el.files;
    box.hidden = !this.pendingFiles.length;
    setChildren(
      box,
      this.pendingFiles.map((item, index) =>
        h(
          "div",
          { class: "composer-file" },
          item.previewUrl ? h("img", { src: item.previewUrl, alt: "" }) : h("span", { class: "file-icon", "aria-hidden": "true" }),
          h("span", { class: "name", text: item.file.name || "image" }),
          h("button", {
            type: "button",
            "aria-label": `Remove ${item.file.name || "image"}`,
            text: "×",
            on: {
              click: () => {
                if (item.previewUrl) URL.revokeObjectURL(item.previewUrl);
                this.pendingFiles.splice(index, 1);
                this._renderPendingFiles();
                this._updateComposer();
              },
            },
          }),
        ),
      ),
    );
  }

  _busy() {
    const cur = this.current;
    if (!cur) return false;
    return this.sending || Boolean(cur.conversation?.activeTurnId) || cur.messages.some((m) => m.status === "streaming");
  }

  _updateComposer() {
    const busy = this._busy();
    const streaming = Boolean(this.current?.messages.some((m) => m.status === "streaming") || this.current?.conversation?.activeTurnId);
    this.el.stop.hidden = !streaming;
    this.el.stop.disabled = this.stopping;
    this.el.stop.textContent = this.stopping ? "Stopping…" : "Stop";
    this.el.send.hidden = streaming;
    this.el.send.disabled = busy || (!this.el.input.value.trim() && !this.pendingFiles.length);
    // Hold screen-reader announcements of the log until the reply is whole.
    this.el.messages.setAttribute("aria-busy", streaming ? "true" : "false");
    this.el.form.dataset.busy = String(busy);
    if (this.current) this._refreshRegenerate(this.current);
  }

  _nearBottom() {
    const s = this.el.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < BOTTOM_THRESHOLD;
  }

  _scrollToBottom() {
    const s = this.el.scroller;
    s.scrollTop = s.scrollHeight;
  }

  // ------------------------------------------------------------ composer

  _bind() {
    const { input, form, stop, scroller } = this.el;
    const grow = () => {
      input.style.height = "auto";
      input.style.height = `${Math.min(input.scrollHeight, 200)}px`;
    };
    input.addEventListener("input", () => {
      grow();
      this._updateComposer();
    });
    input.addEventListener("keydown", (event) => {
      // Enter sends; Shift+Enter is a new line. Never send in the middle of an
      // IME composition (Korean, Japanese, Chinese input confirm with Enter).
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const text = input.value;
      if ((!text.trim() && !this.pendingFiles.length) || this._busy()) return;
      input.value = "";
      grow();
      const sent = await this.send(text);
      if (!sent) input.value = text;
      this._updateComposer();
    });
    stop.addEventListener("click", () => this.stop());
    // Files: the attach button, pasting an image, dropping files on the composer.
    const { attach, attachInput } = this.el;
    attach.addEventListener("click", () => attachInput.click());
    attachInput.addEventListener("change", () => {
      this.addFiles(Array.from(attachInput.files || []));
      attachInput.value = "";
    });
    input.addEventListener("paste", (event) => {
      const pasted = Array.from(event.clipboardData?.files || []);
      if (pasted.length) {
        event.preventDefault();
        this.addFiles(pasted);
      }
    });
    form.addEventListener("dragover", (event) => {
      if (!event.dataTransfer?.types?.includes("Files")) return;
      event.preventDefault();
      form.classList.add("dragging");
    });
    form.addEventListener("dragleave", () => form.classList.remove("dragging"));
    form.addEventListener("drop", (event) => {
      form.classList.remove("dragging");
      const dropped = Array.from(event.dataTransfer?.files || []);
      if (!dropped.length) return;
      event.preventDefault();
      this.addFiles(dropped);
    });
    this.el.model.addEventListener("change", () => this._setModel(this.el.model.value));
    scroller.addEventListener("scroll", () => {
      if (scroller.scrollTop < TOP_THRESHOLD) this._loadOlder();
    }, { passive: true });
  }
}
