// Organising the list: projects (a filter, a new-project dialog, moving a
// conversation), pins, and full-text search inside messages. The list itself
// (loading, live updates, rendering) stays in app.js.

import { checkPayload } from "./api.js";
import { $, askDialog, h, setChildren, shortTime } from "./dom.js";
import * as Q from "./queries.js";

const PROJECT_PAGE = 100;
const SEARCH_PAGE = 20;
// The server's snippet is escaped text with the query's words in <mark>: the app
// still builds it from text nodes, so nothing in it is ever parsed as HTML.
const MARK = /<mark>(.*?)<\/mark>/gs;
const ENTITIES = { "&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": '"', "&#x27;": "'", "&#39;": "'" };

function unescape(text) {
  return text.replace(/&(amp|lt|gt|quot|#x27|#39);/g, (entity) => ENTITIES[entity]);
}

/** A snippet as text and <mark> elements. */
function snippetNodes(snippet) {
  const nodes = [];
  let last = 0;
  for (const match of snippet.matchAll(MARK)) {
    nodes.push(unescape(snippet.slice(last, match.index)));
    nodes.push(h("mark", { text: unescape(match[1]) }));
    last = match.index + match[0].length;
  }
  nodes.push(unescape(snippet.slice(last)));
  return nodes.filter((node) => node !== "");
}

/** The user's projects: the list filter's options and the move dialog's. */
export class Projects {
  constructor({ gql }) {
    this.gql = gql;
    this.items = [];
    // Set when the user signs out: answers still in flight are dropped.
    this.disposed = false;
  }

  /** Signed out: the filter forgets the projects; answers still in flight are dropped. */
  dispose() {
    this.disposed = true;
    this.items = [];
    this.renderFilter();
    $("#project-filter").value = "";
  }

  async load() {
    const items = [];
    let after = null;
    for (;;) {
      const page = (await this.gql.request(Q.PROJECTS, { first: PROJECT_PAGE, after })).projects;
      items.push(...page);
      if (page.length < PROJECT_PAGE) break;
      after = page[page.length - 1].id;
    }
    if (this.disposed) return;
    this.items = items.map((project) => ({ ...project, id: String(project.id) }));
    this.renderFilter();
  }

  byId(id) {
    return this.items.find((project) => project.id === id) || null;
  }

  /** The sidebar's project select: all, each project, none. */
  renderFilter() {
    const select = $("#project-filter");
    const value = select.value;
    setChildren(
      select,
      h("option", { value: "", text: "All projects" }),
      this.items.map((project) => h("option", { value: project.id, text: project.name })),
      h("option", { value: "none", text: "No project" }),
    );
    select.value = [...select.options].some((option) => option.value === value) ? value : "";
  }

  /** The new-project dialog; resolves the created project or null. */
  async create(agents) {
    const dialog = $("#project-dialog");
    const form = $("#project-form");
    form.reset();
    setChildren(
      $("#project-agent"),
      h("option", { value: "", text: "The conversation's choice" }),
      agents.map((agent) => h("option", { value: agent.slug, text: agent.name })),
    );
    showError("");
    $("#project-cancel").onclick = () => dialog.close();
    dialog.showModal();
    $("#project-name").focus();
    return new Promise((resolve) => {
      const button = form.querySelector("button[type=submit]");
      const submit = async (event) => {
        event.preventDefault();
        if (button.disabled) return; // one project per click, however fast the clicks
        button.disabled = true;
        try {
          const data = await this.gql.request(Q.CREATE_PROJECT, {
            name: $("#project-name").value.trim(),
            instructions: $("#project-instructions").value.trim(),
            defaultAgent: $("#project-agent").value || null,
          });
          const project = checkPayload(data.createProject).project;
          this.items.push({ ...project, id: String(project.id) });
          this.renderFilter();
          dialog.close();
          resolve(this.byId(String(project.id)));
        } catch (error) {
          showError(error.message);
        } finally {
          button.disabled = false;
        }
      };
      form.addEventListener("submit", submit);
      dialog.addEventListener(
        "close",
        () => {
          form.removeEventListener("submit", submit);
          resolve(null);
        },
        { once: true },
      );
    });
  }

  /** The move dialog; resolves the chosen project id ("" for none) or null when cancelled. */
  async choose(current) {
    const select = $("#move-project");
    setChildren(
      select,
      h("option", { value: "", text: "No project" }),
      this.items.map((project) => h("option", { value: project.id, text: project.name })),
    );
    select.value = current || "";
    return (await askDialog($("#move-dialog"), select)) ? select.value : null;
  }
}

function showError(message) {
  const el = $("#project-error");
  el.textContent = message;
  el.hidden = !message;
}

/** Messages that match the sidebar's search box (GraphQL `search`), under the list. */
export class MessageSearch {
  constructor({ gql }) {
    this.gql = gql;
    this.seq = 0;
    this.query = "";
    this.after = null;
  }

  /** Search for `query` ("" hides the results); later calls win over slower earlier ones. */
  async run(query, { more = false } = {}) {
    const seq = ++this.seq;
    const section = $("#message-results");
    if (!query) {
      section.hidden = true;
      setChildren($("#message-result-list"));
      return;
    }
    if (!more) this.after = null;
    this.query = query;
    try {
      const page = (await this.gql.request(Q.SEARCH_MESSAGES, { query, first: SEARCH_PAGE, after: this.after })).search;
      if (seq !== this.seq) return;
      const items = page.results.map((result) => this.renderResult(result));
      if (more) $("#message-result-list").append(...items);
      else setChildren($("#message-result-list"), items);
      this.after = page.nextCursor;
      $("#message-results-more").hidden = !page.hasMore;
      $("#message-results-empty").hidden = $("#message-result-list").childElementCount > 0;
      section.hidden = false;
    } catch (error) {
      if (seq !== this.seq) return;
      // A query the server cannot search (too long, only punctuation) shows no results.
      setChildren($("#message-result-list"));
      $("#message-results-empty").hidden = false;
      $("#message-results-more").hidden = true;
      section.hidden = false;
    }
  }

  /** Signed out: an answer still in flight is dropped (a later `seq`), results go. */
  dispose() {
    this.seq += 1;
    $("#message-results").hidden = true;
    setChildren($("#message-result-list"));
  }

  more() {
    return this.run(this.query, { more: true });
  }

  renderResult(result) {
    const conversationId = String(result.conversation.id);
    return h(
      "li",
      {},
      h(
        "a",
        { href: `#/c/${encodeURIComponent(conversationId)}`, class: "message-result" },
        h(
          "span",
          { class: "conversation-row" },
          h("span", { class: "conversation-title", text: result.conversation.title || "Conversation" }),
          h("time", { class: "conversation-time", datetime: result.message.createdAt || "", text: shortTime(result.message.createdAt) }),
        ),
        h("span", { class: "message-snippet" }, snippetNodes(result.snippet || "")),
      ),
    );
  }
}
