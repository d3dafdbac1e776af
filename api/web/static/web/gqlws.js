// A minimal graphql-transport-ws client (the protocol of `graphql-ws`):
// connection_init/connection_ack, subscribe/next/error/complete, ping/pong,
// reconnect with exponential backoff and re-subscribe.
//
// Usage:
//   const client = new SubscriptionClient({url, connectionParams: () => ({authorization: "Bearer …"})});
//   const stop = client.subscribe({query, variables}, {next(result) {}, error(errors) {}, complete() {}, resubscribed() {}});
//   stop();

const PROTOCOL = "graphql-transport-ws";
// Close codes after which retrying with the same credentials is pointless.
const AUTH_CLOSE_CODES = new Set([4401, 4403]);
const FATAL_CLOSE_CODES = new Set([4400, 4406, 4409]);

export class SubscriptionClient {
  constructor({ url, connectionParams, onAuthError = () => {}, onStatus = () => {}, ackTimeout = 10000, pingInterval = 25000 }) {
    this.url = url;
    this.connectionParams = connectionParams;
    this.onAuthError = onAuthError;
    this.onStatus = onStatus;
    this.ackTimeout = ackTimeout;
    this.pingInterval = pingInterval;
    this.socket = null;
    this.acked = false;
    this.retries = 0;
    this.nextId = 1;
    this.subscriptions = new Map(); // id -> {request, sink, started}
    this.timers = { reconnect: null, ack: null, ping: null, pong: null };
    this.disposed = false;
    this.status = "idle";
    this._onOnline = () => this.reconnectNow();
    window.addEventListener("online", this._onOnline);
  }

  /** Start a subscription; returns a function that ends it. */
  subscribe(request, sink) {
    const id = String(this.nextId++);
    this.subscriptions.set(id, { request, sink, started: false });
    if (this.acked) this._sendSubscribe(id);
    else this._connect();
    return () => this._unsubscribe(id);
  }

  /** Close for good (sign out). */
  dispose() {
    this.disposed = true;
    this.subscriptions.clear();
    window.removeEventListener("online", this._onOnline);
    this._clearTimers();
    if (this.socket) this.socket.close(1000, "Normal closure");
    this.socket = null;
    this._setStatus("closed");
  }

  /** Reconnect right away (network came back, tab became visible). */
  reconnectNow() {
    if (this.disposed || !this.subscriptions.size) return;
    if (this.socket && this.socket.readyState <= WebSocket.OPEN) return;
    clearTimeout(this.timers.reconnect);
    this.retries = 0;
    this._connect();
  }

  _setStatus(status) {
    if (status !== this.status) {
      this.status = status;
      this.onStatus(status);
    }
  }

  _send(message) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify(message));
      return true;
    }
    return false;
  }

  _sendSubscribe(id) {
    const sub = this.subscriptions.get(id);
    if (!sub) return;
    const again = sub.started;
    if (this._send({ id, type: "subscribe", payload: sub.request })) {
      sub.started = true;
      // Events may have been missed while disconnected: let the caller catch up.
      if (again && sub.sink.resubscribed) sub.sink.resubscribed();
    }
  }

  _unsubscribe(id) {
    if (!this.subscriptions.delete(id)) return;
    if (this.acked) this._send({ id, type: "complete" });
  }

  _connect() {
    if (this.disposed) return;
    if (this.socket && this.socket.readyState <= WebSocket.OPEN) return;
    clearTimeout(this.timers.reconnect);
    this._setStatus(this.retries ? "reconnecting" : "connecting");
    let socket;
    try {
      socket = new WebSocket(this.url, PROTOCOL);
    } catch {
      this._scheduleReconnect();
      return;
    }
    this.socket = socket;
    this.acked = false;
    socket.onopen = () => {
      this._send({ type: "connection_init", payload: this.connectionParams() || {} });
      this.timers.ack = setTimeout(() => this._drop(socket, 4408, "Connection acknowledgement timeout"), this.ackTimeout);
    };
    socket.onmessage = (event) => this._onMessage(socket, event);
    socket.onclose = (event) => this._onClose(socket, event);
    // onerror is always followed by onclose; nothing to do here.
    socket.onerror = () => {};
  }

  _onMessage(socket, event) {
    if (socket !== this.socket) return;
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      socket.close(4400, "Invalid message");
      return;
    }
    const sub = message.id ? this.subscriptions.get(message.id) : null;
    switch (message.type) {
      case "connection_ack":
        clearTimeout(this.timers.ack);
        this.acked = true;
        this.retries = 0;
        this._setStatus("connected");
        this._startPing();
        for (const id of this.subscriptions.keys()) this._sendSubscribe(id);
        break;
      case "ping":
        this._send({ type: "pong" });
        break;
      case "pong":
        clearTimeout(this.timers.pong);
        break;
      case "next":
        if (sub) sub.sink.next(message.payload);
        break;
      case "error":
        if (sub) {
          this.subscriptions.delete(message.id);
          sub.sink.error(message.payload);
        }
        break;
      case "complete":
        if (sub) {
          this.subscriptions.delete(message.id);
          if (sub.sink.complete) sub.sink.complete();
        }
        break;
      default:
        break;
    }
  }

  _onClose(socket, event) {
    if (socket !== this.socket) return;
    this._clearTimers();
    this.socket = null;
    this.acked = false;
    if (this.disposed) return;
    if (AUTH_CLOSE_CODES.has(event.code)) {
      this._setStatus("closed");
      this.onAuthError(event);
      return;
    }
    if (FATAL_CLOSE_CODES.has(event.code)) {
      // A protocol bug on one side: retrying quickly would loop; back off hard.
      this.retries = Math.max(this.retries, 5);
    }
    if (this.subscriptions.size) this._scheduleReconnect();
    else this._setStatus("idle");
  }

  /** Give up on a socket now (a dead one may take minutes to report its close). */
  _drop(socket, code, reason) {
    this._onClose(socket, { code, reason });
    try {
      socket.close(code, reason);
    } catch {
      // Already closed.
    }
  }

  _scheduleReconnect() {
    if (this.disposed) return;
    this._setStatus("reconnecting");
    const base = Math.min(30000, 500 * 2 ** this.retries);
    const delay = base / 2 + Math.random() * (base / 2);
    this.retries += 1;
    clearTimeout(this.timers.reconnect);
    this.timers.reconnect = setTimeout(() => this._connect(), delay);
  }

  _startPing() {
    clearInterval(this.timers.ping);
    this.timers.ping = setInterval(() => {
      if (!this._send({ type: "ping" })) return;
      clearTimeout(this.timers.pong);
      // No pong: the connection is dead (sleep, network change); start over.
      const socket = this.socket;
      this.timers.pong = setTimeout(() => this._drop(socket, 4499, "Ping timeout"), 10000);
    }, this.pingInterval);
  }

  _clearTimers() {
    clearTimeout(this.timers.ack);
    clearTimeout(this.timers.pong);
    clearInterval(this.timers.ping);
  }
}
