// The meeting's data messages. Ours: the key check and our chosen name (to everyone, and again
// to each newcomer), and reactions. What arrives, one message at a time, goes where it belongs:
// key checks to KeyStatus (and a reply with ours), names to the roster, reactions to the stage,
// chat to the chat, and the server's own messages (the system topic: notices, locks, polls,
// breakout rooms, key epochs, the recorder's state) to those who handle them.
//
// Our sealed data messages need the key check to reach a participant whose key differs, so
// livekit-client's own data-channel encryption stays off (see meeting.ts): chat, profiles and
// reactions are sealed with our data key, with the sender bound in the AAD; the key check is a
// public one-way value.
import { ConnectionState, type RemoteParticipant, type Room } from 'livekit-client';

import type { MeetingChat } from './chat';
import { EnvelopeError } from './e2ee';
import type { KeyStatus } from './keystatus';
import type { MeetingKeys } from './meetingkeys';
import {
  TOPIC_CHAT,
  TOPIC_KEYCHECK,
  TOPIC_NOTEPAD,
  TOPIC_PRIVATE,
  TOPIC_PROFILE,
  TOPIC_REACTION,
  TOPIC_SYSTEM,
  decodeJson,
  encodeJson,
  parseChat,
  parseKeyCheck,
  parsePrivate,
  parseProfile,
  parseReaction,
  parseSystem,
  privateAad,
  toastKind,
  type ReactionName,
  type SystemMessage,
} from './protocol';
import type { Roster } from './roster';
import { toast } from './ui/toasts';

/** `v` as we send it: sealed by `sender` in an encrypted room, plain JSON otherwise. */
export async function sealJson(keys: MeetingKeys | null, sender: string, v: unknown): Promise<Uint8Array<ArrayBuffer>> {
  const bytes = encodeJson(v);
  return keys ? keys.seal(sender, bytes) : bytes;
}

type PollMessage = Extract<SystemMessage, { type: 'POLL_CREATED' | 'POLL_CLOSED' | 'POLL_RESPONSE' | 'POLLS_ACTIVE' }>;

/** Who handles what arrives. */
export interface DataRoutes {
  /** Null when the room has chat off. */
  chat: MeetingChat | null;
  reaction: (identity: string, name: ReactionName) => void;
  polls: (type: PollMessage['type'], pollId: string) => Promise<void>;
  breakout: (m: SystemMessage) => Promise<void>;
  recorder: (state: { recording: boolean; rtmp: boolean }) => void;
  /** The server told of an error (it explains a recorder stop that follows). */
  errorNotice: () => void;
  /** Names or key checks changed: everything that shows them follows. */
  sync: () => void;
  /** Documents and files: CONTENT_UPDATE, CONTENT_CLEARED and our locks (LOCK_SETTINGS). */
  content: (m: SystemMessage) => void;
  /** A notepad presence message, opened (null when the notepad is off). */
  notepad: ((from: string, message: unknown) => void) | null;
}

export interface MeetingDataOptions {
  room: Room;
  keys: MeetingKeys | null;
  encrypted: boolean;
  keyStatus: KeyStatus;
  /** The name we chose. */
  name: string;
  roster: Roster;
  ended: () => boolean;
  to: DataRoutes;
}

export class MeetingData {
  /** Whom we answered with our key check (identity and session), so we answer once. */
  private readonly replied = new Set<string>();
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly o: MeetingDataOptions) {}

  /** A data packet arrived: handled after those before it. */
  receive(payload: Uint8Array, participant: RemoteParticipant | undefined, topic: string | undefined): void {
    const copy = new Uint8Array(payload);
    this.queue = this.queue.then(() => this.onData(copy, participant, topic)).catch(() => {});
  }

  /** Publishes our key check and our chosen name (to everyone, or to `to`). */
  announce(to?: string[]): void {
    const { room, keys } = this.o;
    if (this.o.ended() || room.state !== ConnectionState.Connected) return;
    const opts = { reliable: true, destinationIdentities: to };
    const me = room.localParticipant;
    const tasks: Array<Promise<unknown>> = [];
    const current = keys?.current;
    if (current) {
      tasks.push(me.publishData(encodeJson({ type: 'key_check', check: current.checkHex, generation: current.generation }), { ...opts, topic: TOPIC_KEYCHECK }));
    }
    tasks.push(this.sealed({ type: 'profile', name: this.o.name }).then((b) => me.publishData(b, { ...opts, topic: TOPIC_PROFILE })));
    void Promise.all(tasks).catch(() => {});
  }

  /** They left: a next session of theirs gets our key check again. */
  participantLeft(identity: string): void {
    for (const k of [...this.replied]) if (k.startsWith(`${identity}\u0000`)) this.replied.delete(k);
  }

  /** After a reconnect everyone hears from us again. */
  reconnected(): void {
    this.replied.clear();
    this.announce();
  }

  /** Sends a reaction to everyone (sealed in an encrypted room) and shows it on our own tile. */
  async sendReaction(name: ReactionName): Promise<void> {
    const me = this.o.room.localParticipant;
    this.o.to.reaction(me.identity, name);
    try {
      await me.publishData(await this.sealed({ type: 'reaction', name }), { reliable: true, topic: TOPIC_REACTION });
    } catch {
      toast('The reaction could not be sent.', 'warning');
    }
  }

  private sealed(v: unknown): Promise<Uint8Array<ArrayBuffer>> {
    return sealJson(this.o.keys, this.o.room.localParticipant.identity, v);
  }

  /** Opens a message of `from`; null (and a key-mismatch signal) if it does not open. */
  private async opened(from: string, payload: Uint8Array, aad: string = from): Promise<unknown> {
    if (!this.o.encrypted) return decodeJson(payload);
    try {
      const opened = await this.o.keys!.open(aad, payload);
      return opened && decodeJson(opened);
    } catch (e) {
      if (e instanceof EnvelopeError) this.o.keyStatus.dataOpenFailed(from);
      return undefined;
    }
  }

  private async onData(payload: Uint8Array, participant: RemoteParticipant | undefined, topic: string | undefined): Promise<void> {
    if (this.o.ended()) return;
    const { to } = this.o;
    if (topic === TOPIC_SYSTEM) {
      // Only the server speaks on this topic: a participant's packet always carries its identity.
      if (!participant) await this.onSystem(payload);
      return;
    }
    if (!participant) return;
    const from = participant.identity;
    if (topic === TOPIC_KEYCHECK) {
      const kc = parseKeyCheck(decodeJson(payload));
      if (!kc) return;
      this.o.keyStatus.keyCheck(from, kc.check, kc.generation);
      // They are on an epoch we never got: fetch it (their next check will match).
      this.o.keys?.sawGeneration(kc.generation);
      const key = `${from}\u0000${participant.sid}`;
      if (!this.replied.has(key)) {
        this.replied.add(key);
        this.announce([from]);
      }
      to.sync();
      return;
    }
    if (topic === TOPIC_PROFILE) {
      const p = parseProfile(await this.opened(from, payload));
      if (p && this.o.roster.setName(from, p.name)) to.sync();
      return;
    }
    if (topic === TOPIC_REACTION) {
      const name = parseReaction(await this.opened(from, payload));
      if (name) to.reaction(from, name);
      return;
    }
    if (topic === TOPIC_PRIVATE) {
      // Opens only as the copy for us: the envelope binds the sender and this recipient.
      const me = this.o.room.localParticipant.identity;
      const aad = privateAad(from, me);
      const msg = parsePrivate(await this.opened(from, payload, aad), from, me);
      if (msg) to.chat?.received(msg, from, payload, aad);
      return;
    }
    if (topic === TOPIC_NOTEPAD) {
      if (!to.notepad) return;
      const m = await this.opened(from, payload);
      if (m !== undefined) to.notepad(from, m);
      return;
    }
    if (topic === TOPIC_CHAT) {
      const msg = parseChat(await this.opened(from, payload), from);
      if (msg) to.chat?.received(msg, from, payload);
    }
  }

  private async onSystem(payload: Uint8Array): Promise<void> {
    const { to } = this.o;
    const m = parseSystem(decodeJson(payload));
    if (!m) return;
    if (m.type === 'SYSTEM_CHAT_MSG') {
      if (to.chat) await to.chat.notice(m.message);
      else toast(m.message, 'info');
    } else if (m.type === 'LOCK_SETTINGS') {
      to.chat?.lockSettings(m.lock_chat, m.lock_private_chat);
      to.content(m);
    } else if (m.type === 'CONTENT_UPDATE' || m.type === 'CONTENT_CLEARED') {
      to.content(m);
    } else if (m.type === 'POLL_CREATED' || m.type === 'POLL_CLOSED' || m.type === 'POLL_RESPONSE' || m.type === 'POLLS_ACTIVE') {
      await to.polls(m.type, m.type === 'POLLS_ACTIVE' ? '' : m.poll_id);
    } else if (m.type === 'JOIN_BREAKOUT_ROOM' || m.type === 'BREAKOUT_ROOM_ENDED' || m.type === 'BREAKOUT_ROOMS_CHANGED' || m.type === 'BREAKOUT_ROOM_EXTENDED') {
      await to.breakout(m);
    } else if (m.type === 'E2EE_KEY') {
      await this.o.keys?.onEpoch(m.generation, m.secret, 'pushed');
    } else if (m.type === 'RECORDER_STATE') {
      to.recorder({ recording: m.is_recording, rtmp: m.is_active_rtmp });
    } else {
      const kind = toastKind(m.notification_type);
      if (kind === 'error') to.errorNotice();
      toast(m.msg, kind);
    }
  }
}
