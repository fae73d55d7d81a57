// Cloud recording and RTMP broadcasting as the client sees them: the room's recorder state (from
// verifyToken at join, then the server's RECORDER_STATE messages), the admin's requests in
// flight, and the check of an RTMP target before it is sent. Pure: no DOM, unit-tested in Node.
//
// The server is the truth. A reply to the admin's own request only stands in for a state message
// that has not arrived (yet): if any state message arrived while the request was in flight, that
// message wins. So a stream that fails at once (refused, and the server already said so on the
// data channel) is never shown as live because the HTTP reply came in later.

export type Sink = 'recording' | 'rtmp';

export interface RecorderFlags {
  recording: boolean;
  rtmp: boolean;
}

/** A request of this client in flight. */
export type Pending = 'starting' | 'stopping' | null;

/** A change of the room's state, for announcements. */
export interface Transition {
  sink: Sink;
  on: boolean;
}

export interface Ticket {
  readonly sink: Sink;
  readonly start: boolean;
  readonly seq: number;
}

/** The flags of a verifyToken reply (absent or not a boolean: off). */
export function flagsFromVerify(v: { is_recording?: unknown; is_active_rtmp?: unknown }): RecorderFlags {
  return { recording: v.is_recording === true, rtmp: v.is_active_rtmp === true };
}

export class RecorderModel {
  private flags: RecorderFlags;
  private readonly pending: Record<Sink, Pending> = { recording: null, rtmp: null };
  /** Counts the server's state messages. */
  private seq = 0;
  private readonly listeners = new Set<() => void>();

  constructor(initial: RecorderFlags) {
    this.flags = { ...initial };
  }

  get state(): Readonly<RecorderFlags> {
    return this.flags;
  }

  pendingOf(sink: Sink): Pending {
    return this.pending[sink];
  }

  /** The position in the server's messages, for `fromServer(…, since)`. */
  get mark(): number {
    return this.seq;
  }

  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /**
   * The server's state. With `since` (a `mark` taken before asking for a snapshot, e.g. a
   * verifyToken after a reconnect), it is ignored if a state message arrived in between: that
   * message is newer.
   */
  fromServer(f: RecorderFlags, since?: number): Transition[] {
    if (since !== undefined && since !== this.seq) return [];
    if (since === undefined) this.seq += 1;
    return this.apply(f);
  }

  /** The admin asks to start or stop `sink`; null while a request for it is already in flight. */
  begin(sink: Sink, start: boolean): Ticket | null {
    if (this.pending[sink]) return null;
    this.pending[sink] = start ? 'starting' : 'stopping';
    this.emit();
    return { sink, start, seq: this.seq };
  }

  /** The server accepted the request. */
  done(t: Ticket): Transition[] {
    this.pending[t.sink] = null;
    if (t.seq !== this.seq) {
      // The server has spoken since: its message is the truth.
      this.emit();
      return [];
    }
    return this.apply({ ...this.flags, [t.sink]: t.start });
  }

  /** The server refused (or could not be reached): nothing changed. */
  failed(t: Ticket): void {
    this.pending[t.sink] = null;
    this.emit();
  }

  private apply(f: RecorderFlags): Transition[] {
    const out: Transition[] = [];
    for (const sink of ['recording', 'rtmp'] as const) {
      if (this.flags[sink] !== f[sink]) out.push({ sink, on: f[sink] });
    }
    this.flags = { recording: f.recording, rtmp: f.rtmp };
    this.emit();
    return out;
  }

  private emit(): void {
    for (const fn of this.listeners) fn();
  }
}

// ---------------------------------------------------------------------------------------------
// RTMP targets

export const MAX_RTMP_URL = 2048;
export const MAX_STREAM_KEY = 1024;

export type RtmpCheck =
  | { ok: true; url: string; streamKey: string }
  | { ok: false; field: 'url' | 'key'; error: string };

const EXAMPLE = 'rtmp://live.example.com/app';
// eslint-disable-next-line no-control-regex
const SPACE_OR_CONTROL = /[\s\u0000-\u001f\u007f]/;

/**
 * Checks what the admin typed before it is sent (the server checks again). The key may be empty
 * when the address already ends with it: the server then uses the address as it is.
 */
export function checkRtmpTarget(rawUrl: string, rawKey: string): RtmpCheck {
  const url = rawUrl.trim();
  const key = rawKey.trim();
  const bad = (field: 'url' | 'key', error: string): RtmpCheck => ({ ok: false, field, error });
  if (!url) return bad('url', `Enter the address of the streaming server, like ${EXAMPLE}.`);
  const scheme = /^(rtmps?):\/\//i.exec(url);
  if (!scheme) return bad('url', `The address must start with rtmp:// or rtmps://, like ${EXAMPLE}.`);
  if (SPACE_OR_CONTROL.test(url)) return bad('url', 'The address cannot contain spaces.');
  if (url.length > MAX_RTMP_URL) return bad('url', 'The address is too long.');
  const rest = url.slice(scheme[0].length);
  const authority = rest.split(/[/?#]/, 1)[0] ?? '';
  const hostPort = authority.slice(authority.lastIndexOf('@') + 1);
  const m = /^(\[[0-9a-f:.]+\]|[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)(?::(\d{1,5}))?$/i.exec(hostPort);
  if (!m) return bad('url', `The address needs a server name after ${scheme[1]!.toLowerCase()}://, like ${EXAMPLE}.`);
  if (m[2] !== undefined && (Number(m[2]) < 1 || Number(m[2]) > 65535)) return bad('url', `The port ${m[2]} is not valid.`);
  if (SPACE_OR_CONTROL.test(key)) return bad('key', 'The stream key cannot contain spaces.');
  if (key.length > MAX_STREAM_KEY) return bad('key', 'The stream key is too long.');
  return { ok: true, url: scheme[1]!.toLowerCase() + url.slice(scheme[1]!.length), streamKey: key };
}
