// Confab's service worker: shows Web Push notifications and opens the conversation on a click.

self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch {
    data = {};
  }
  const failed = data.status === "failed";
  const approval = data.type === "tool.approval_requested";
  const title = failed
    ? `A reply failed: ${data.conversation_title || ""}`
    : approval
      ? `Approval needed: ${data.conversation_title || ""}`
      : data.conversation_title || "Your reply is ready";
  event.waitUntil(
    self.registration.showNotification(title, {
      body: approval ? data.text || "A tool call is waiting for your approval." : data.text || "",
      tag: `conversation-${data.conversation_id}`,
      data: { url: `/#/c/${data.conversation_id}` },
    }),
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = event.notification.data?.url || "/";
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((windows) => {
      for (const client of windows) {
        if ("focus" in client) {
          client.navigate(url);
          return client.focus();
        }
      }
      return self.clients.openWindow(url);
    }),
  );
});
