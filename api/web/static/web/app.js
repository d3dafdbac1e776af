// Confab's web chat app: sign in, the conversation list, routing and dialogs.
// Plain ES modules, no build step. The open conversation lives in chat.js.

import { ApiError, GraphQLClient, checkPayload, clearAuth, loadAuth, restPost, saveAuth } from "./api.js";
import { ChatView } from "./chat.js";
import { enableNotifications, notificationPermission, notifyReplyEnded, resumeNotifications } from "./notify.js";
import { $, askDialog, h, setChildren, shortTime } from "./dom.js";
import * as Q from "./queries.js";
import { MessageSearch, Projects } from "./organize.js";
import { SubscriptionClient } from "./subscriptions.js";
import { importExport, saveDownload } from "./transfer.js";
import { activityTime, announce, conversationTitle, mergeConversation, normalizeConversation, toast } from "./util.js";

const config = {
  graphqlUrl: document.body.dataset.graphqlUrl || "/graphql/",
  apiUrl: document.body.dataset.apiUrl || "/api/v1/",
  registrationOpen: document.body.dataset.registrationOpen === "true",
};
const LIST_PAGE = 30;

const app = $("#app");
const state = {
  auth: null,
  agents: [],
  // project: "" (all), "none" (in no project) or a project id.
  list: { items: new Map(), archived: false, project: "", search: "", endCursor: null, hasNext: false, loading: false, seq: 0 },
  registerMode: false,
};
let gql = null;
let ws = null;
let chat = null;
let listUnsubscribe = null;
let projects = null;
let messageSearch = null;

// ---------------------------------------------------------------- auth

function showAuth(message = "") {
  app.dataset.auth = "out";
  $("#auth-screen").hidden = false;
  $("#sidebar").hidden = true;
  $("#chat").hidden = true;
  setRegisterMode(false);
  showAuthError(message);
  document.title = "Sign in · Confab";
  $("#auth-username").focus();
}

function showAuthError(message) {
  const el = $("#auth-error");
  el.textContent = message;
  el.hidden = !message;
}

function setRegisterMode(on) {
  state.registerMode = on && config.registrationOpen;
  $("#auth-title").textContent = state.registerMode ? "Create an account" : "Sign in";
  $("#auth-submit").textContent = state.registerMode ? "Create account" : "Sign in";
  $("#auth-password").autocomplete = state.registerMode ? "new-password" : "current-password";
  $("#auth-switch").hidden = !config.registrationOpen;
  $("#auth-switch-text").textContent = state.registerMode ? "Have an account?" : "New here?";
  $("#auth-switch-button").textContent = state.registerMode ? "Sign in" : "Create an account";
}

async function submitAuth(event) {
  event.preventDefault();
  const username = $("#auth-username").value.trim();
  const password = $("#auth-password").value;
  if (!username || !password) {
    showAuthError("Enter your username and password.");
    return;
  }
  const button = $("#auth-submit");
  button.disabled = true;
  showAuthError("");
  try {
    if (state.registerMode) {
      const registered = await restPost(config.apiUrl, "auth/register/", { username, password, device_name: "web" });
      if (registered?.token) {
        signedIn(registered);
        return;
      }
    }
    const data = await restPost(config.apiUrl, "auth/token/", { username, password, device_name: "web" });
    signedIn(data);
  } catch (error) {
    showAuthError(error.status === 400 || error.status === 401 ? error.message || "Wrong username or password." : error.message);
  } finally {
    button.disabled = false;
  }
}

function signedIn(data) {
  state.auth = { token: data.token, expiry: data.expiry || null, user: data.user || null };
  saveAuth(state.auth);
  $("#auth-password").value = "";
  startApp();
}

async function signOut() {
  const token = state.auth?.token;
  stopApp();
  clearAuth();
  state.auth = null;
  showAuth("");
  if (token) {
    try {
      await restPost(config.apiUrl, "auth/logout/", {}, token);
    } catch {
      // The token is gone from this browser either way.
    }
  }
}

/** The server refused our token (expired, revoked): back to the sign-in form. */
function sessionExpired() {
  if (!state.auth) return;
  stopApp();
  clearAuth();
  state.auth = null;
  showAuth("Your session has ended. Please sign in again.");
}

// ---------------------------------------------------------------- app

function startApp() {
  app.dataset.auth = "in";
  $("#auth-screen").hidden = true;
  $("#sidebar").hidden = false;
  $("#chat").hidden = false;
  $("#user-name").textContent = state.auth.user?.username || "";
  gql = new GraphQLClient(config.graphqlUrl, { getToken: () => state.auth?.token, onUnauthenticated: sessionExpired });
  const wsUrl = new URL(config.graphqlUrl, window.location.href);
  wsUrl.protocol = wsUrl.protocol === "https:" ? "wss:" : "ws:";
  ws = new SubscriptionClient({
    url: wsUrl.href,
    connectionParams: () => ({ authorization: `Bearer ${state.auth?.token}` }),
    onAuthError: sessionExpired,
    onStatus: showConnection,
  });
  chat = new ChatView({
    gql,
    ws,
    getAgent: agentBySlug,
    onConversation: (conversation) => upsertListItem(conversation),
    onGone: (id, reason) => {
      chat.close();
      removeListItem(id);
      toast(reason, { error: true });
      navigate("");
    },
    onReplyEnded: (conversation, message) => {
      notifyReplyEnded({ conversationId: conversation?.id, title: conversation?.title, message }).catch(() => {});
    },
  });
  projects = new Projects({ gql });
  messageSearch = new MessageSearch({ gql });
  projects.load().catch((error) => toast(`Could not load projects: ${error.message}`, { error: true }));
  showNotifyButton();
  resumeNotifications().catch(() => {});
  listUnsubscribe = ws.subscribe({ query: Q.CONVERSATIONS_CHANGED, variables: {} }, {
    next: onListEvent,
    error: () => {},
    resubscribed: () => loadConversations(true),
  });
  gql.request(Q.ME).then((data) => {
    if (!state.auth) return;
    state.auth.user = data.me;
    // Keep credentials stored meanwhile (another tab signed in or out): ours are older.
    if (loadAuth()?.token === state.auth.token) saveAuth(state.auth);
    $("#user-name").textContent = data.me.username;
  }).catch(() => {});
  loadAgents();
  loadConversations(true);
  route();
}

/** Offer notifications while the browser has not been asked yet. */
function showNotifyButton() {
  $("#notify-enable").hidden = notificationPermission() !== "default";
}

async function turnOnNotifications() {
  const permission = await enableNotifications({ apiUrl: config.apiUrl, token: state.auth?.token });
  showNotifyButton();
  if (permission === "granted") toast("Notifications on: you will hear when a reply is ready.");
}

function stopApp() {
  if (listUnsubscribe) listUnsubscribe();
  listUnsubscribe = null;
  if (chat) chat.close();
  chat = null;
  if (ws) ws.dispose();
  ws = null;
  gql = null;
  // The next user must not see this one's projects or search results.
  projects?.dispose();
  messageSearch?.dispose();
  projects = null;
  messageSearch = null;
  state.list.items.clear();
  state.list.project = "";
  state.agents = [];
  setChildren($("#conversation-list"));
  showConnection("idle");
}

function showConnection(status) {
  const el = $("#connection");
  if (status === "reconnecting") {
    el.textContent = "Reconnecting…";
    el.hidden = false;
  } else {
    el.hidden = true;
  }
}

async function loadAgents() {
  try {
    const data = await gql.request(Q.AGENTS);
    state.agents = data.agents || [];
    // The header lists context variables in the agent's order.
    if (chat) chat.refreshHeader();
  } catch (error) {
    toast(`Could not load agents: ${error.message}`, { error: true });
  }
}

// ---------------------------------------------------------------- routing

function currentRoute() {
  const match = window.location.hash.match(/^#\/c\/([^/?#]+)/);
  return match ? decodeURIComponent(match[1]) : null;
}

function navigate(id) {
  const hash = id ? `#/c/${encodeURIComponent(id)}` : "#/";
  if (window.location.hash !== hash) window.location.hash = hash;
  else route();
}

function route() {
  if (!chat) return;
  const id = currentRoute();
  if (id) {
    app.dataset.view = "chat";
    chat.open(id, state.list.items.get(id) || null);
  } else {
    app.dataset.view = "list";
    chat.close();
    document.title = "Confab";
  }
  renderList();
}

// ---------------------------------------------------------------- list

function matchesFilter(conversation) {
  const { archived, project } = state.list;
  if (conversation.archived !== archived) return false;
  if (project === "none") return !conversation.projectId;
  return !project || conversation.projectId === project;
}

async function loadConversations(reset) {
  const list = state.list;
  if (!gql || (list.loading && !reset)) return;
  const seq = ++list.seq;
  list.loading = true;
  $("#conversation-more").disabled = true;
  try {
    const data = await gql.request(Q.CONVERSATIONS, {
      first: LIST_PAGE,
      after: reset ? null : list.endCursor,
      archived: list.archived,
      search: list.search || null,
      project: list.project || null,
    });
    if (seq !== list.seq) return;
    if (reset) list.items.clear();
    for (const edge of data.conversations.edges) {
      const conversation = normalizeConversation(edge.node);
      list.items.set(conversation.id, mergeConversation(list.items.get(conversation.id), conversation));
    }
    list.endCursor = data.conversations.pageInfo.endCursor;
    list.hasNext = data.conversations.pageInfo.hasNextPage;
  } catch (error) {
    if (seq === list.seq) toast(`Could not load conversations: ${error.message}`, { error: true });
  } finally {
    if (seq === list.seq) {
      list.loading = false;
      $("#conversation-more").disabled = false;
      renderList();
    }
  }
}

function upsertListItem(conversation) {
  const items = state.list.items;
  const known = items.get(conversation.id);
  if (!matchesFilter(conversation)) {
    if (known) {
      items.delete(conversation.id);
      renderList();
    }
    return;
  }
  // While searching, only refresh what the search found.
  if (!known && state.list.search) return;
  items.set(conversation.id, mergeConversation(known, conversation));
  renderList();
}

function removeListItem(id) {
  if (state.list.items.delete(id)) renderList();
}

function onListEvent(result) {
  const event = result?.data?.conversationsChanged;
  if (!event) return;
  if (event.__typename === "ConversationDeleted") {
    const id = String(event.conversation?.id ?? event.conversationId);
    removeListItem(id);
    if (chat?.current?.id === id) {
      toast("This conversation was deleted.");
      navigate("");
    }
    return;
  }
  if (event.__typename === "ToolApprovalRequested") {
    // The open conversation shows its own Approve / Deny; another one gets a hint.
    if (chat?.current?.id !== String(event.conversationId)) {
      const names = (event.calls || []).map((call) => call.name).join(", ");
      toast(`A tool call (${names}) is waiting for your approval in another conversation.`);
    }
    return;
  }
  if (!event.conversation) return;
  const conversation = normalizeConversation(event.conversation);
  upsertListItem(conversation);
  if (chat) chat.updateConversation(conversation);
}

function renderList() {
  const ul = $("#conversation-list");
  const openId = chat?.current?.id || null;
  // As the server lists them: pinned first, then by activity.
  const items = [...state.list.items.values()].sort((a, b) => {
    if (a.pinned !== b.pinned) return a.pinned ? -1 : 1;
    const ta = activityTime(a);
    const tb = activityTime(b);
    if (ta !== tb) return ta < tb ? 1 : -1;
    return Number(b.id) - Number(a.id) || 0;
  });
  setChildren(ul, items.map((conversation) => {
    const last = conversation.lastMessage;
    const preview = last?.text
      ? `${last.role === "human" ? "You: " : ""}${last.text}`
      : last?.status === "streaming" ? "Replying…" : conversation.agentName;
    const current = conversation.id === openId;
    return h("li", {},
      h("a", {
        href: `#/c/${encodeURIComponent(conversation.id)}`,
        class: `conversation-item${current ? " is-current" : ""}`,
        "aria-current": current ? "page" : null,
      },
      h("span", { class: "conversation-row" },
        conversation.pinned ? h("span", { class: "pin-mark", title: "Pinned", "aria-label": "Pinned", text: "📌" }) : null,
        h("span", { class: "conversation-title", text: conversationTitle(conversation) }),
        h("time", { class: "conversation-time", datetime: activityTime(conversation), text: shortTime(activityTime(conversation)) })),
      h("span", { class: "conversation-row" },
        h("span", { class: "conversation-preview", text: preview }),
        conversation.activeTurnId ? h("span", { class: "live-dot", title: "Replying", "aria-label": "Replying" }) : null)));
  }));
  $("#conversation-empty").hidden = items.length > 0 || state.list.loading;
  $("#conversation-empty").textContent = state.list.search
    ? "No conversations match."
    : state.list.archived ? "No archived conversations." : "No conversations yet.";
  $("#conversation-more").hidden = !state.list.hasNext;
}

function setProjectFilter(project) {
  if (state.list.project === project) return;
  state.list.project = project;
  state.list.items.clear();
  renderList();
  loadConversations(true);
}

async function newProject() {
  const project = await projects.create(state.agents);
  if (project) {
    $("#project-filter").value = project.id;
    setProjectFilter(project.id);
    toast(`Project “${project.name}” created.`);
  }
}

async function exportEverything() {
  const name = await saveDownload(config.apiUrl, "export/", state.auth.token);
  toast(`Saved ${name}.`);
}

async function importChosenFile(event) {
  const file = event.target.files?.[0];
  event.target.value = "";
  if (!file) return;
  const imported = await importExport(config.apiUrl, file, state.auth.token);
  // New conversations (new ids): the list shows them from the server.
  loadConversations(true);
  toast(imported.length === 1 ? "Imported 1 conversation." : `Imported ${imported.length} conversations.`);
}

function setArchivedFilter(archived) {
  if (state.list.archived === archived) return;
  state.list.archived = archived;
  $("#show-active").setAttribute("aria-pressed", String(!archived));
  $("#show-archived").setAttribute("aria-pressed", String(archived));
  state.list.items.clear();
  renderList();
  loadConversations(true);
}

// ---------------------------------------------------------------- dialogs

let dialogMode = { kind: "create", conversation: null };

function agentBySlug(slug) {
  return state.agents.find((agent) => agent.slug === slug) || null;
}

/** Inputs for an agent's context variables, prefilled with `values` or the defaults. */
function renderContextInputs(agent, values = null) {
  const container = $("#context-inputs");
  const variables = [...(agent?.contextVariables || [])];
  for (const key of Object.keys(values || {})) {
    if (!variables.some((v) => v.name === key)) variables.push({ name: key, default: "", description: "" });
  }
  $("#context-fields").hidden = variables.length === 0;
  setChildren(container, variables.map((variable, index) => {
    const id = `context-${index}`;
    const value = values && variable.name in values ? values[variable.name] : variable.default ?? "";
    return h("div", { class: "field" },
      h("label", { for: id, text: variable.name }),
      h("input", { id, name: `context:${variable.name}`, value: typeof value === "string" ? value : JSON.stringify(value), dataset: { variable: variable.name }, autocomplete: "off" }),
      variable.description ? h("p", { class: "hint", text: variable.description }) : null);
  }));
}

async function openCreateDialog() {
  if (!state.agents.length) await loadAgents();
  if (!state.agents.length) {
    toast("No agents are available.", { error: true });
    return;
  }
  dialogMode = { kind: "create", conversation: null };
  $("#conversation-dialog-title").textContent = "New conversation";
  $("#conversation-submit").textContent = "Start";
  $("#agent-field").hidden = false;
  const select = $("#agent-select");
  setChildren(select, state.agents.map((agent) => h("option", { value: agent.slug, text: agent.name })));
  // In a project's view, new conversations go into it, with its default agent.
  const project = projects?.byId(state.list.project);
  const preferred = agentBySlug(project?.defaultAgent) ? project.defaultAgent
    : agentBySlug("language-tutor") ? "language-tutor" : state.agents[0].slug;
  select.value = preferred;
  onAgentChange();
  $("#conversation-title").value = "";
  showDialogError("");
  $("#conversation-dialog").showModal();
  select.focus();
}

function openEditDialog() {
  const conversation = chat?.conversation;
  if (!conversation) return;
  dialogMode = { kind: "edit", conversation };
  $("#conversation-dialog-title").textContent = "Edit conversation";
  $("#conversation-submit").textContent = "Save";
  $("#agent-field").hidden = true;
  $("#conversation-title").value = conversation.title;
  renderContextInputs(agentBySlug(conversation.agentSlug), conversation.context);
  showDialogError("");
  $("#conversation-dialog").showModal();
  $("#conversation-title").focus();
}

function onAgentChange() {
  const agent = agentBySlug($("#agent-select").value);
  $("#agent-description").textContent = agent?.description || "";
  renderContextInputs(agent);
}

function showDialogError(message) {
  const el = $("#conversation-error");
  el.textContent = message;
  el.hidden = !message;
}

function collectContext() {
  const context = {};
  for (const input of $("#context-inputs").querySelectorAll("input[data-variable]")) {
    const value = input.value.trim();
    if (value) context[input.dataset.variable] = value;
  }
  return context;
}

async function submitConversationDialog(event) {
  event.preventDefault();
  const submit = $("#conversation-submit");
  submit.disabled = true;
  showDialogError("");
  const title = $("#conversation-title").value.trim();
  const context = collectContext();
  try {
    if (dialogMode.kind === "create") {
      const project = projects?.byId(state.list.project) ? state.list.project : null;
      const data = await gql.request(Q.CREATE_CONVERSATION, { agent: $("#agent-select").value, context, title: title || null, project });
      const conversation = normalizeConversation(checkPayload(data.createConversation).conversation);
      $("#conversation-dialog").close();
      if (state.list.archived) setArchivedFilter(false);
      upsertListItem(conversation);
      navigate(conversation.id);
      chat.focusComposer();
    } else {
      const data = await gql.request(Q.UPDATE_CONVERSATION, { id: dialogMode.conversation.id, title, context });
      const conversation = normalizeConversation(checkPayload(data.updateConversation).conversation);
      $("#conversation-dialog").close();
      chat.updateConversation(conversation);
      upsertListItem(conversation);
      toast("Saved.");
    }
  } catch (error) {
    showDialogError(error instanceof ApiError ? error.message : String(error));
  } finally {
    submit.disabled = false;
  }
}

/** A modal yes/no question; resolves true on OK. */
function confirmDialog(title, text, okLabel) {
  const dialog = $("#confirm-dialog");
  $("#confirm-title").textContent = title;
  $("#confirm-text").textContent = text;
  $("#confirm-ok").textContent = okLabel;
  return askDialog(dialog);
}

// ---------------------------------------------------------------- menu

function setMenu(open) {
  const menu = $("#chat-menu");
  const button = $("#chat-menu-button");
  menu.hidden = !open;
  button.setAttribute("aria-expanded", String(open));
  if (open) menu.querySelector("[role=menuitem]").focus();
}

async function runMenuAction(action) {
  setMenu(false);
  const conversation = chat?.conversation;
  if (!conversation) return;
  try {
    if (action === "edit") {
      openEditDialog();
    } else if (action === "clear") {
      if (!(await confirmDialog("Clear messages?", "Every message of this conversation will be deleted. The conversation stays.", "Clear"))) return;
      const data = await gql.request(Q.CLEAR_CONVERSATION, { id: conversation.id });
      const cleared = normalizeConversation(checkPayload(data.clearConversation).conversation);
      chat.cleared(cleared);
      upsertListItem(cleared);
      announce("Messages cleared.");
    } else if (action === "pin") {
      const data = await gql.request(Q.PIN_CONVERSATION, { id: conversation.id, pinned: !conversation.pinned });
      const updated = normalizeConversation(checkPayload(data.updateConversation).conversation);
      chat.updateConversation(updated);
      upsertListItem(updated);
      announce(updated.pinned ? "Conversation pinned." : "Conversation unpinned.");
    } else if (action === "move") {
      const target = await projects.choose(conversation.projectId);
      if (target === null || target === (conversation.projectId || "")) return;
      const data = await gql.request(Q.MOVE_CONVERSATION, { id: conversation.id, project: target || null });
      const moved = normalizeConversation(checkPayload(data.updateConversation).conversation);
      chat.updateConversation(moved);
      upsertListItem(moved);
      toast(target ? `Moved to “${projects.byId(target)?.name}”.` : "Moved out of its project.");
    } else if (action === "export-markdown" || action === "export-json") {
      const format = action === "export-json" ? "json" : "markdown";
      const name = await saveDownload(config.apiUrl, `conversations/${conversation.id}/export/?format=${format}`, state.auth.token);
      toast(`Saved ${name}.`);
    } else if (action === "share") {
      // A read-only link to the conversation as it is now (docs/web.md, "The share page").
      const data = await gql.request(Q.CREATE_SHARE, { id: conversation.id });
      const { url } = checkPayload(data.createShare).share;
      let copied = false;
      try {
        await navigator.clipboard.writeText(url);
        copied = true;
      } catch {
        // No clipboard (plain http on another host): the toast shows the link.
      }
      toast(copied ? `Read-only link copied: ${url}` : `Read-only link: ${url}`);
    } else if (action === "archive") {
      const archived = !conversation.archived;
      const data = await gql.request(Q.ARCHIVE_CONVERSATION, { id: conversation.id, archived });
      const updated = normalizeConversation(checkPayload(data.archiveConversation).conversation);
      chat.updateConversation(updated);
      upsertListItem(updated);
      toast(archived ? "Conversation archived." : "Conversation restored.");
    } else if (action === "delete") {
      if (!(await confirmDialog("Delete this conversation?", "The conversation and all its messages will be deleted for good.", "Delete"))) return;
      const data = await gql.request(Q.DELETE_CONVERSATION, { id: conversation.id });
      checkPayload(data.deleteConversation);
      chat.close();
      removeListItem(conversation.id);
      navigate("");
      toast("Conversation deleted.");
    }
  } catch (error) {
    toast(error.message, { error: true });
  }
}

// ---------------------------------------------------------------- wiring

function bind() {
  $("#auth-form").addEventListener("submit", submitAuth);
  $("#auth-switch-button").addEventListener("click", () => {
    setRegisterMode(!state.registerMode);
    showAuthError("");
  });
  $("#sign-out").addEventListener("click", signOut);
  $("#notify-enable").addEventListener("click", () => turnOnNotifications().catch(() => {}));
  $("#new-conversation").addEventListener("click", openCreateDialog);
  $("#chat-empty-new").addEventListener("click", openCreateDialog);
  $("#agent-select").addEventListener("change", onAgentChange);
  $("#conversation-form").addEventListener("submit", submitConversationDialog);
  $("#conversation-cancel").addEventListener("click", () => $("#conversation-dialog").close());
  $("#conversation-more").addEventListener("click", () => loadConversations(false));
  $("#show-active").addEventListener("click", () => setArchivedFilter(false));
  $("#show-archived").addEventListener("click", () => setArchivedFilter(true));
  $("#back").addEventListener("click", () => navigate(""));
  let searchTimer = null;
  $("#conversation-search").addEventListener("input", (event) => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      state.list.search = event.target.value.trim();
      loadConversations(true);
      messageSearch?.run(state.list.search);
    }, 250);
  });
  $("#message-results-more").addEventListener("click", () => messageSearch?.more());
  $("#project-filter").addEventListener("change", (event) => setProjectFilter(event.target.value));
  $("#new-project").addEventListener("click", () => newProject().catch(() => {}));
  $("#export-all").addEventListener("click", () => exportEverything().catch((error) => toast(error.message, { error: true })));
  $("#import-button").addEventListener("click", () => $("#import-input").click());
  $("#import-input").addEventListener("change", (event) => importChosenFile(event).catch((error) => toast(`Could not import: ${error.message}`, { error: true })));
  $(".conversation-nav").addEventListener("scroll", (event) => {
    const el = event.currentTarget;
    if (state.list.hasNext && el.scrollHeight - el.scrollTop - el.clientHeight < 200) loadConversations(false);
  }, { passive: true });

  $("#chat-menu-button").addEventListener("click", () => setMenu($("#chat-menu").hidden));
  $("#chat-menu").addEventListener("click", (event) => {
    const item = event.target.closest("[data-action]");
    if (item) runMenuAction(item.dataset.action);
  });
  $("#chat-menu").addEventListener("keydown", (event) => {
    const items = [...$("#chat-menu").querySelectorAll("[role=menuitem]")];
    const index = items.indexOf(document.activeElement);
    if (event.key === "ArrowDown") items[(index + 1) % items.length].focus();
    else if (event.key === "ArrowUp") items[(index - 1 + items.length) % items.length].focus();
    else if (event.key === "Escape") {
      setMenu(false);
      $("#chat-menu-button").focus();
    } else return;
    event.preventDefault();
  });
  document.addEventListener("click", (event) => {
    if (!$("#chat-menu").hidden && !event.target.closest(".chat-actions")) setMenu(false);
  });

  window.addEventListener("hashchange", route);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && ws) ws.reconnectNow();
  });
  // Another tab signed in or out.
  window.addEventListener("storage", (event) => {
    if (event.key !== "confab.auth") return;
    const auth = loadAuth();
    if (!auth && state.auth) sessionExpired();
    else if (auth && !state.auth) {
      state.auth = auth;
      startApp();
    }
  });
}

function main() {
  bind();
  setRegisterMode(false);
  state.auth = loadAuth();
  if (state.auth) startApp();
  else showAuth();
}

main();
