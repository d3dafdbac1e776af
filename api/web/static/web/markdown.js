// Markdown of AI replies: markdown-it renders, DOMPurify sanitizes, highlight.js colours
// code. The chat and the share page use this one renderer.
//
// Three layers, each enough on its own for what it stops:
// - markdown-it runs with `html: false`: HTML in a reply is shown as text, never parsed
//   (`<script>`, `<img onerror>`, `<svg onload>` are characters on the screen); its
//   link check drops javascript:, vbscript:, file: and data: URLs;
// - DOMPurify then keeps only the tags and attributes Markdown makes (no `style`, no
//   event handlers, no SVG or MathML, links only to http(s) and mailto);
// - the page's Content-Security-Policy allows no inline script at all.
// Images are not rendered (`![]()` stays text): a reply must not load a tracker, and
// the CSP allows same-origin images only.

import "./vendor/markdown-it.js"; // UMD: defines globalThis.markdownit
import DOMPurify from "./vendor/dompurify.js";
import hljs from "./vendor/highlight.js";
import { h } from "./dom.js";

// Longer code blocks are shown without colours.
const MAX_HIGHLIGHT_CHARS = 20_000;
// Off while a reply streams (it is rendered again at every frame that brought text);
// its final render colours it.
let highlighting = true;

function highlight(code, lang) {
  if (!highlighting || !lang || code.length > MAX_HIGHLIGHT_CHARS || !hljs.getLanguage(lang)) return "";
  try {
    return hljs.highlight(code, { language: lang, ignoreIllegals: true }).value;
  } catch {
    return ""; // markdown-it escapes the code itself
  }
}

const md = globalThis.markdownit({ html: false, linkify: true, breaks: true, highlight });
md.disable("image");
// Table alignment is a class, not markdown-it's `style` attribute: the page's CSP
// forbids inline styles (even parsing one, before DOMPurify drops it, is a violation).
md.core.ruler.push("align_as_class", (state) => {
  for (const token of state.tokens) {
    if (token.type !== "inline" && token.attrs) {
      const style = token.attrGet("style");
      const align = /^text-align:(left|right|center)$/.exec(style || "");
      if (style !== null) token.attrs = token.attrs.filter(([name]) => name !== "style");
      if (align) token.attrJoin("class", `align-${align[1]}`);
    }
  }
});

const PURIFY = {
  ALLOWED_TAGS: [
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "s", "del",
    "code", "pre", "blockquote", "ul", "ol", "li", "a", "table", "thead", "tbody", "tr",
    "th", "td", "span",
  ],
  ALLOWED_ATTR: ["href", "title", "class", "start"],
  ALLOWED_URI_REGEXP: /^(?:https?|mailto):/i,
  ALLOW_DATA_ATTR: false,
  RETURN_DOM_FRAGMENT: true,
};

// Every link opens a new tab, without giving that page a handle on this one.
DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A") {
    if (!node.getAttribute("href")) {
      node.removeAttribute("href");
      return;
    }
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer nofollow");
  }
});

async function copy(text, button) {
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = "Copied";
  } catch {
    button.textContent = "Copy failed";
  }
  setTimeout(() => { button.textContent = "Copy"; }, 1500);
}

/** Wrap each code block with a header: its language and a Copy button. */
function decorateCode(fragment) {
  for (const pre of fragment.querySelectorAll("pre")) {
    const code = pre.querySelector("code");
    if (!code) continue;
    code.classList.add("hljs");
    const lang = [...code.classList].find((c) => c.startsWith("language-"))?.slice(9) || "";
    const button = h("button", {
      type: "button",
      class: "copy-code",
      text: "Copy",
      "aria-label": "Copy code",
      on: { click: () => copy(code.textContent, button) },
    });
    const block = h("div", { class: "code-block" }, h("div", { class: "code-head" }, h("span", { text: lang }), button));
    pre.replaceWith(block);
    block.append(pre);
  }
}

/** `text` as sanitized Markdown: a DocumentFragment, safe to insert. */
function renderMarkdown(text, { streaming = false } = {}) {
  highlighting = !streaming;
  const fragment = DOMPurify.sanitize(md.render(text || ""), PURIFY);
  highlighting = true;
  decorateCode(fragment);
  // No trailing newline text: the reply's text ends where its last block does.
  while (fragment.lastChild && fragment.lastChild.nodeType === Node.TEXT_NODE && !fragment.lastChild.data.trim()) {
    fragment.lastChild.remove();
  }
  return fragment;
}

/** Replace `el`'s content with `text` rendered as Markdown (`streaming`: not coloured yet). */
export function fillMarkdown(el, text, options) {
  el.replaceChildren(renderMarkdown(text, options));
}
