// Notifications when a reply ends while the tab is hidden, and Web Push when the server
// has a VAPID key. Everything here is optional: a browser without the APIs, or a user who
// says no, keeps the app working as before.

import { restRequest } from "./api.js";

let registration = null;

/** Whether the browser can show notifications at all. */
export function notificationsSupported() {
  return "Notification" in window && "serviceWorker" in navigator;
}

/** "granted", "denied", "default" (not asked yet) or "unsupported". */
export function notificationPermission() {
  return notificationsSupported() ? Notification.permission : "unsupported";
}

async function serviceWorker() {
  if (!registration) {
    // At the root so its scope is the whole app (the server allows it: Service-Worker-Allowed).
    registration = await navigator.serviceWorker.register("/sw.js", { scope: "/" });
    await navigator.serviceWorker.ready;
  }
  return registration;
}

function urlBase64ToBytes(text) {
  const padded = (text + "=".repeat((4 - (text.length % 4)) % 4)).replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

/**
 * Ask for permission (call from a click), register the service worker and, when the
 * server does Web Push, subscribe this browser and register it on our token.
 * Returns the permission.
 */
export async function enableNotifications({ apiUrl, token }) {
  if (!notificationsSupported()) return "unsupported";
  const permission = await Notification.requestPermission();
  if (permission !== "granted") return permission;
  const reg = await serviceWorker();
  try {
    const setup = await restRequest(apiUrl, "GET", "auth/tokens/current/push/", null, token);
    if (setup.webpush_public_key && reg.pushManager) {
      const subscription = await reg.pushManager.subscribe({
        userVisibleOnly: true,
        applicationServerKey: urlBase64ToBytes(setup.webpush_public_key),
      });
      await restRequest(apiUrl, "PUT", "auth/tokens/current/push/", { platform: "webpush", subscription: subscription.toJSON() }, token);
    }
  } catch {
    // No push service reachable (or none configured): notifications still show while
    // the app is open in a hidden tab.
  }
  return permission;
}

/** Re-attach to an already granted permission after a reload (no prompt). */
export async function resumeNotifications() {
  if (notificationPermission() === "granted") await serviceWorker();
}

/** Show "the reply is ready" when the tab is hidden (the user is elsewhere). */
export async function notifyReplyEnded({ conversationId, title, message }) {
  if (document.visibilityState !== "hidden" || notificationPermission() !== "granted") return;
  const reg = await serviceWorker();
  const failed = message.status === "failed";
  await reg.showNotification(failed ? `A reply failed: ${title}` : title || "Your reply is ready", {
    body: (message.text || "").slice(0, 300),
    tag: `conversation-${conversationId}`,
    data: { url: `/#/c/${conversationId}` },
  });
}
