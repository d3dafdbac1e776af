// HTTP side of the API: REST for signing in and out, GraphQL for everything else.

const AUTH_KEY = "confab.auth";

export class ApiError extends Error {
  constructor(message, { code = "ERROR", status = 0, fields = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.code = code;
    this.status = status;
    this.fields = fields;
  }
}

export const UNAUTHENTICATED_CODES = new Set(["NOT_AUTHENTICATED", "UNAUTHENTICATED", "AUTHENTICATION_FAILED"]);

/** The stored session: {token, expiry, user} or null (expired ones are dropped). */
export function loadAuth() {
  try {
    const auth = JSON.parse(localStorage.getItem(AUTH_KEY) || "null");
    if (!auth || typeof auth.token !== "string") return null;
    if (auth.expiry && new Date(auth.expiry).getTime() < Date.now()) {
      localStorage.removeItem(AUTH_KEY);
      return null;
    }
    return auth;
  } catch {
    return null;
  }
}

export function saveAuth(auth) {
  localStorage.setItem(AUTH_KEY, JSON.stringify(auth));
}

export function clearAuth() {
  localStorage.removeItem(AUTH_KEY);
}

/** The first human-readable message of a DRF error body. */
function restErrorMessage(body, status) {
  if (!body || typeof body !== "object") return `Request failed (HTTP ${status}).`;
  if (body.fields && typeof body.fields === "object") {
    for (const errors of Object.values(body.fields)) {
      const first = Array.isArray(errors) ? errors[0] : errors;
      if (first) return typeof first === "string" ? first : first.message || body.detail;
    }
  }
  return body.detail || `Request failed (HTTP ${status}).`;
}

/** POST JSON to the REST API (`path` relative to /api/v1/). */
export function restPost(apiUrl, path, body, token = null) {
  return restRequest(apiUrl, "POST", path, body ?? {}, token);
}

/** A JSON request to the REST API (`path` relative to /api/v1/; no body when `body` is null). */
export function restRequest(apiUrl, method, path, body, token = null) {
  const headers = { Accept: "application/json" };
  if (body !== null) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  return sendRest(apiUrl + path, {
    method,
    headers,
    body: body === null ? undefined : JSON.stringify(body),
  });
}

/** Upload one file (multipart, field `file`) to `POST files/`; its file object. */
export function uploadFile(apiUrl, file, token) {
  const form = new FormData();
  form.append("file", file, file.name || "pasted-image.png");
  return sendRest(`${apiUrl}files/`, {
    method: "POST",
    headers: { Accept: "application/json", Authorization: `Bearer ${token}` },
    body: form,
  });
}

/** fetch without cookies (token auth only); a network failure is an ApiError. */
async function apiFetch(url, init) {
  try {
    // Token auth only: never let an admin session cookie authenticate the app.
    return await fetch(url, { ...init, credentials: "omit" });
  } catch {
    throw new ApiError("Cannot reach the server. Check your connection.", { code: "NETWORK" });
  }
}

async function jsonOf(response) {
  try {
    return await response.json();
  } catch {
    return null;
  }
}

function restError(data, response) {
  return new ApiError(restErrorMessage(data, response.status), {
    code: data?.code || `HTTP_${response.status}`,
    status: response.status,
    fields: data?.fields || null,
  });
}

/** Send a REST request; its JSON body, or an ApiError in the API's error shape. */
async function sendRest(url, init) {
  const response = await apiFetch(url, init);
  const data = await jsonOf(response);
  if (!response.ok) throw restError(data, response);
  return data;
}

/** GET a file the API answers (an export): {blob, filename} from Content-Disposition. */
export async function downloadRest(apiUrl, path, token) {
  const response = await apiFetch(apiUrl + path, { headers: { Authorization: `Bearer ${token}` } });
  if (!response.ok) throw restError(await jsonOf(response), response);
  const disposition = response.headers.get("Content-Disposition") || "";
  // The API names its exports in ASCII: `attachment; filename="conversation-12.md"`.
  const match = disposition.match(/filename="([^"]+)"/);
  return { blob: await response.blob(), filename: match ? match[1] : "export" };
}

/** A GraphQL-over-HTTP client with bearer-token auth. */
export class GraphQLClient {
  constructor(url, { getToken, onUnauthenticated }) {
    this.url = url;
    this.getToken = getToken;
    this.onUnauthenticated = onUnauthenticated;
  }

  async request(query, variables = {}) {
    const headers = { "Content-Type": "application/json", Accept: "application/json" };
    const token = this.getToken();
    if (token) headers.Authorization = `Bearer ${token}`;
    const response = await apiFetch(this.url, { method: "POST", headers, body: JSON.stringify({ query, variables }) });
    const body = await jsonOf(response);
    if (response.status === 401) {
      this.onUnauthenticated();
      throw new ApiError("Please sign in again.", { code: "NOT_AUTHENTICATED", status: 401 });
    }
    const errors = body?.errors;
    if (Array.isArray(errors) && errors.length) {
      const first = errors[0];
      const code = first.extensions?.code || "GRAPHQL_ERROR";
      if (UNAUTHENTICATED_CODES.has(code)) this.onUnauthenticated();
      throw new ApiError(first.message || "Request failed.", {
        code,
        status: response.status,
        fields: first.extensions?.fields || null,
      });
    }
    if (!response.ok || !body?.data) {
      throw new ApiError(`Request failed (HTTP ${response.status}).`, { code: `HTTP_${response.status}`, status: response.status });
    }
    return body.data;
  }
}

/** Raise the first typed payload error of a mutation result (`{errors: [{field, code, message}]}`). */
export function checkPayload(payload) {
  const errors = payload?.errors;
  if (Array.isArray(errors) && errors.length) {
    const first = errors[0];
    throw new ApiError(first.message || "Request failed.", { code: first.code || "ERROR", fields: errors });
  }
  return payload;
}
