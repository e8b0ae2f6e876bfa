// Type declarations of chatroom.js. See README.md for the API.

/** A frame from the room, as PROTOCOL.md describes it. */
export interface Frame {
  type: string;
  id: number;
  time: string;
  nickname?: string;
  to?: string;
  message?: string;
  members?: string[];
  code?: number;
  ref?: string;
  [field: string]: unknown;
}

export type MessageState = "sending" | "sent" | "failed";

/** Why the room did not take a message. */
export interface Refusal {
  /** The error frame's text (e.g. "rate limit exceeded"), or the close reason. */
  message: string;
  /** The error frame's or the close's code (1008, 4404, ...); 0 for a message not confirmed before a reload. */
  code?: number;
}

/** One message the client sends, and what became of it. */
export declare class OutgoingMessage {
  /** The ref it is sent with, the same on every resend. */
  readonly ref: string;
  readonly text: string;
  /** The recipient of a direct message. */
  readonly to: string | undefined;
  readonly state: MessageState;
  /** Once sent: the room's id and time of the message. */
  readonly id: number | undefined;
  readonly time: string | undefined;
  /** Once failed: why. */
  readonly error: Refusal | undefined;
  /** Sent, and its echo was dispatched before its ack arrived. */
  readonly echoed: boolean;
  /** How many times it was put on a connection. */
  readonly attempts: number;
  /** When it was typed (or last retried), in ms since 1970. */
  readonly createdAt: number;
}

export type ConnectionState = "idle" | "connecting" | "open" | "waiting" | "closed" | "failed";

export interface StateDetail {
  state: ConnectionState;
  previous: ConnectionState;
  /** connecting and open: this connection asked for ?since=. */
  resuming?: boolean;
  /** connecting: failed connections since the last frame received. */
  attempt?: number;
  /** waiting, failed, closed: the close code and reason. */
  code?: number;
  reason?: string;
  /** waiting, failed: the connection that closed had opened. */
  wasOpen?: boolean;
  /** waiting: ms until the next attempt, and when (ms since 1970). */
  retryIn?: number;
  retryAt?: number;
}

export interface MessageDetail {
  frame: Frame;
  /** Set when the frame is the echo of one of this client's messages. */
  ref: string | undefined;
  mine: boolean;
}

export interface PresenceDetail {
  type: "members" | "join" | "leave";
  frame: Frame;
  /** join and leave: who. */
  nickname?: string;
  /** The nicknames present after this frame. */
  members: string[];
  /** This connection resumed (?since=). */
  resumed: boolean;
}

export interface FrameDetail {
  frame: Frame;
}

export interface OutboxDetail {
  message: OutgoingMessage;
  /** The message left the outbox unsent (discard or edit). */
  discarded?: boolean;
}

export interface LimitedDetail {
  /** Refused for the rate limit the room announced: it is sent again, with its ref, once the limit allows. */
  message: OutgoingMessage;
}

/** The rate limit a room announces in its members frame (WithAnnouncedRateLimit). */
export interface RateLimit {
  perSecond: number;
  burst: number;
}

export interface ChatClientEventMap {
  state: CustomEvent<StateDetail>;
  message: CustomEvent<MessageDetail>;
  direct: CustomEvent<MessageDetail>;
  presence: CustomEvent<PresenceDetail>;
  system: CustomEvent<FrameDetail>;
  error: CustomEvent<FrameDetail>;
  truncated: CustomEvent<FrameDetail>;
  outbox: CustomEvent<OutboxDetail>;
  limited: CustomEvent<LimitedDetail>;
  frame: CustomEvent<FrameDetail>;
}

/** Anything with the methods of Storage that the client uses. */
export interface OutboxStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export interface ChatClientOptions {
  /** The room's WebSocket address (ws:, wss:, or relative to the page); the client sets since. */
  url: string | URL | (() => string | URL);
  /** ms before the first reconnect, doubled per failure (500). */
  minDelay?: number;
  /** ms, the most a reconnect waits (10000). */
  maxDelay?: number;
  /** ms a connection may take to open (10000). */
  connectTimeout?: number;
  /** ms without an answer to a message before the connection is closed and made again (15000); 0: never. */
  ackTimeout?: number;
  /** ms an echo of one's own message waits for its ack before it is dispatched anyway (3000). */
  holdTimeout?: number;
  /** Messages sent and not yet answered, at most (8). */
  maxInFlight?: number;
  /** ms after which a restored message that was never confirmed is failed rather than resent (120000). */
  resendWindow?: number;
  /** Where the outbox is kept across reloads, e.g. sessionStorage; none by default. */
  storage?: OutboxStorage;
  /** The key of the outbox in storage ("chatroom.outbox"). */
  storageKey?: string;
  /** The WebSocket constructor (globalThis.WebSocket). */
  WebSocket?: { new (url: string): WebSocket };
}

/** What loadOlder() gives: older messages, oldest first, and whether the room has older ones still. */
export interface OlderMessages {
  /** message and system frames, none of them one the client holds already. */
  messages: Frame[];
  more: boolean;
}

/** Why loadOlder() gave nothing. */
export declare class ScrollbackError extends Error {
  readonly name: "ScrollbackError";
  /** The error frame's or the close's code (1011 "history unavailable", 1007 for a room without scrollback, 1006, ...); 0: the client was not connected. */
  readonly code: number;
}

export declare class ChatClient extends EventTarget {
  constructor(options: ChatClientOptions);
  readonly state: ConnectionState;
  readonly members: string[];
  readonly lastId: number;
  /** Sending and failed messages, in the order typed. */
  readonly outbox: OutgoingMessage[];
  /** The room said there is nothing older than the oldest message held. */
  readonly atBeginning: boolean;
  /** The rate limit the room announced, which the outbox keeps to; null if none. */
  readonly rate: RateLimit | null;
  connect(): void;
  reconnectNow(): void;
  close(code?: number, reason?: string): void;
  send(text: string, options?: { to?: string }): OutgoingMessage;
  retry(message: OutgoingMessage | string): OutgoingMessage | undefined;
  edit(message: OutgoingMessage | string, text: string): OutgoingMessage | undefined;
  discard(message: OutgoingMessage | string): void;
  /** Asks for up to limit (1 to 100, default 50) messages before the oldest held; a call while one waits returns its promise. */
  loadOlder(limit?: number): Promise<OlderMessages>;

  addEventListener<K extends keyof ChatClientEventMap>(
    type: K,
    listener: (this: ChatClient, ev: ChatClientEventMap[K]) => unknown,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof ChatClientEventMap>(
    type: K,
    listener: (this: ChatClient, ev: ChatClientEventMap[K]) => unknown,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | EventListenerOptions): void;
}
