// Export and import (docs/web.md): a conversation as Markdown or JSON, all of the
// user's data as a zip, and an export's JSON brought back as new conversations.

import { ApiError, downloadRest, restPost } from "./api.js";
import { h } from "./dom.js";

/** Save what the API answers at `path` as a download; its file name. */
export async function saveDownload(apiUrl, path, token) {
  const { blob, filename } = await downloadRest(apiUrl, path, token);
  const url = URL.createObjectURL(blob);
  const link = h("a", { href: url, download: filename, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  // The browser has the blob once the download started.
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  return filename;
}

/** Import an export's JSON file (`POST conversations/import/`); the new conversations. */
export async function importExport(apiUrl, file, token) {
  let exported;
  try {
    exported = JSON.parse(await file.text());
  } catch {
    throw new ApiError("This file is not a Confab export (it is not JSON).", { code: "INVALID_FILE" });
  }
  const result = await restPost(apiUrl, "conversations/import/", exported, token);
  return result.conversations || [];
}
