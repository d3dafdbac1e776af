// Live updates: GraphQL subscriptions over one websocket, spoken by graphql-ws's
// reference client (vendor/graphql-ws.js, its browser build, pinned by `make vendor`).
// The protocol, reconnecting and re-subscribing are the library's; this module adds
// what the app needs on top: the token in connection_init, a status for the
// "Reconnecting…" banner, a `resubscribed` call so a view can fetch what the dropped
// connection missed, a deadline for pongs, and never giving up while signed in.
//
// Usage:
//   const client = new SubscriptionClient({url, connectionParams: () => ({authorization: "Bearer …"})});
//   const stop = client.subscribe({query, variables}, {next(result) {}, error(errors) {}, complete() {}, resubscribed() {}});
//   stop();

// A UMD bundle: imported for its side effect, it defines `globalThis.graphqlWs`.
import "./vendor/graphql-ws.js";

const { createClient } = globalThis.graphqlWs;

// The server refused the token: retrying with it is pointless.
const AUTH_CLOSE_CODES = new Set([4401, 4403]);
// graphql-ws stops retrying after these (a protocol bug or a server limit such as
// 4429, too many sockets): wait at least this many backoff steps (8-16 s) before
// subscribing again, so a bug does not become a tight loop.
const FATAL_RETRY_STEPS = 5;

/** Reconnect delay: 0.5 s doubling to 30 s, with jitter (half to all of it). */
function backoff(retries) {
  const base = Math.min(30000, 500 * 2 ** retries);
  return base / 2 + Math.random() * (base / 2);
}

/** A websocket close (or graphql-ws's own 4499 "Terminated"), not a GraphQL error list. */
function isClose(value) {
  return typeof value === "object" && value !== null && "code" in value && "reason" in value;
}

function refusesToken(value) {
  return isClose(value) && AUTH_CLOSE_CODES.has(value.code);
}

export class SubscriptionClient {
  constructor({ url, connectionParams, onAuthError = () => {}, onStatus = () => {}, ackTimeout = 10000, pingInterval = 25000, pongTimeout = 10000 }) {
    this.onAuthError = onAuthError;
    this.onStatus = onStatus;
    this.status = "idle";
    this.disposed = false;
    this.connected = false;
    this.subscriptions = new Set(); // {request, sink, stop, live, restarts}
    this.waits = new Set(); // pending reconnect delays; reconnectNow() ends them
    this.pongTimer = null;
    this.client = createClient({
      url,
      connectionParams,
      connectionAckWaitTimeout: ackTimeout,
      keepAlive: pingInterval,
      retryAttempts: Infinity,
      retryWait: (retries) => this._wait(backoff(retries)),
      // graphql-ws retries only closes by default; a connection that failed to open
      // (server restarting) reports an error event first, and is worth retrying too.
      shouldRetry: (errorOrClose) => !refusesToken(errorOrClose),
      on: {
        connecting: (isRetry) => this._setStatus(isRetry || this.status === "reconnecting" ? "reconnecting" : "connecting"),
        connected: () => this._onConnected(),
        closed: (event) => this._onClosed(event),
        ping: (received) => {
          if (!received) this._expectPong(pongTimeout);
        },
        pong: (received) => {
          if (received) clearTimeout(this.pongTimer);
        },
      },
    });
    this._onOnline = () => this.reconnectNow();
    window.addEventListener("online", this._onOnline);
  }

  /** Start a subscription; returns a function that ends it. */
  subscribe(request, sink) {
    // `live`: subscribed on a connection before, so a new connection is a re-subscription.
    const subscription = { request, sink, stop: null, live: this.connected, restarts: 0 };
    this.subscriptions.add(subscription);
    this._start(subscription);
    return () => {
      if (this.subscriptions.delete(subscription)) subscription.stop();
    };
  }

  /** Close for good (sign out). */
  dispose() {
    this.disposed = true;
    window.removeEventListener("online", this._onOnline);
    clearTimeout(this.pongTimer);
    for (const subscription of this.subscriptions) subscription.stop();
    this.subscriptions.clear();
    this._endWaits();
    // Rejects when no connection was ever made (the server was down): nothing to close.
    this.client.dispose().catch(() => {});
    this._setStatus("closed");
  }

  /** Reconnect right away (network came back, tab became visible) instead of after the backoff. */
  reconnectNow() {
    if (!this.disposed) this._endWaits();
  }

  _start(subscription) {
    const active = () => this.subscriptions.has(subscription);
    subscription.stop = this.client.subscribe(subscription.request, {
      next: (result) => {
        if (active()) subscription.sink.next(result);
      },
      error: (error) => {
        if (active()) this._onError(subscription, error);
      },
      complete: () => {
        if (this.subscriptions.delete(subscription) && subscription.sink.complete) subscription.sink.complete();
      },
    });
  }

  _onError(subscription, error) {
    if (Array.isArray(error)) {
      // The server's GraphQL errors for this operation (NOT_FOUND, …): it is over.
      this.subscriptions.delete(subscription);
      subscription.sink.error(error);
      return;
    }
    // graphql-ws gave up on the connection (a close code it deems fatal). Release the
    // operation's hold on it, then subscribe again later, unless the token was refused
    // (_onClosed signs out).
    subscription.stop();
    if (refusesToken(error)) return;
    this._setStatus("reconnecting");
    const steps = Math.max(FATAL_RETRY_STEPS, subscription.restarts++);
    this._wait(backoff(steps)).then(() => {
      if (this.subscriptions.has(subscription) && !this.disposed) this._start(subscription);
    });
  }

  _onConnected() {
    this.connected = true;
    this._setStatus("connected");
    for (const subscription of this.subscriptions) {
      // Events may have been missed while disconnected: let the view catch up.
      if (subscription.live && subscription.sink.resubscribed) subscription.sink.resubscribed();
      subscription.live = true;
    }
  }

  _onClosed(event) {
    this.connected = false;
    clearTimeout(this.pongTimer);
    if (this.disposed) return;
    if (refusesToken(event)) {
      this._setStatus("closed");
      this.onAuthError(event);
      return;
    }
    this._setStatus(this.subscriptions.size ? "reconnecting" : "idle");
  }

  /** No pong in time: the connection is dead (sleep, network change) though the socket
   * may not notice for minutes. graphql-ws's terminate() closes it 4499 and retries. */
  _expectPong(timeout) {
    clearTimeout(this.pongTimer);
    this.pongTimer = setTimeout(() => this.client.terminate(), timeout);
  }

  _wait(ms) {
    return new Promise((resolve) => {
      const end = () => {
        clearTimeout(timer);
        this.waits.delete(end);
        resolve();
      };
      const timer = setTimeout(end, ms);
      this.waits.add(end);
    });
  }

  _endWaits() {
    for (const end of [...this.waits]) end();
  }

  _setStatus(status) {
    if (status !== this.status) {
      this.status = status;
      this.onStatus(status);
    }
  }
}
