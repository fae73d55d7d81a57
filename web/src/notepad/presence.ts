// Who has the notepad open, and where their cursor is: Yjs awareness updates, sent as data
// messages (sealed like chat) and never stored. What arrives is rewritten before Yjs sees it:
// a participant speaks only for the awareness clients it introduced first (it cannot move or
// rename another's cursor), its name is the roster's (not what it claims), its colour ours
// (derived from its identity; a colour is put into a style attribute, so none is taken from the
// wire), and only a cursor of a sane shape is kept.
//
// Part of the lazy bundle (lib0).

import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';

/** At most this many awareness clients in one update from one participant (one per open doc). */
export const MAX_PRESENCE_ENTRIES = 4;
/** A cursor (two relative positions) as JSON is far smaller than this. */
const MAX_CURSOR_JSON = 1024;

const COLORS = ['#e5484d', '#f76b15', '#ffc53d', '#46a758', '#12a594', '#0090ff', '#8e4ec6', '#d6409f'];

/** A colour of our palette for `identity` (the same in every browser). */
export function colorOf(identity: string): string {
  let h = 2166136261;
  for (let i = 0; i < identity.length; i++) h = Math.imul(h ^ identity.charCodeAt(i), 16777619);
  return COLORS[(h >>> 0) % COLORS.length];
}

export interface PresenceEntry {
  clientId: number;
  clock: number;
  /** Null: the client left. */
  state: PresenceState | null;
}

export interface PresenceState {
  user: { name: string; color: string; colorLight: string };
  cursor: { anchor: unknown; head: unknown } | null;
}

/**
 * `update` from `from`, rewritten as described at the top, or null when it is malformed. Clients
 * that belong to someone else are left out; `owners` learns the clients `from` introduced.
 */
export function sanitizePresence(update: Uint8Array, from: string, name: string, owners: Map<number, string>): Uint8Array | null {
  let entries: PresenceEntry[];
  try {
    entries = decodePresence(update);
  } catch {
    return null;
  }
  if (entries.length === 0 || entries.length > MAX_PRESENCE_ENTRIES) return null;
  const kept: PresenceEntry[] = [];
  for (const e of entries) {
    const owner = owners.get(e.clientId);
    if (owner !== undefined && owner !== from) continue;
    owners.set(e.clientId, from);
    kept.push({ clientId: e.clientId, clock: e.clock, state: e.state === null ? null : cleanState(e.state, from, name) });
  }
  return kept.length ? encodePresence(kept) : null;
}

function cleanState(raw: unknown, from: string, name: string): PresenceState {
  const color = colorOf(from);
  const s = (typeof raw === 'object' && raw !== null ? raw : {}) as { cursor?: unknown };
  return { user: { name, color, colorLight: `${color}33` }, cursor: cleanCursor(s.cursor) };
}

function cleanCursor(c: unknown): PresenceState['cursor'] {
  if (typeof c !== 'object' || c === null) return null;
  const { anchor, head } = c as { anchor?: unknown; head?: unknown };
  if (!isRelativePosition(anchor) || !isRelativePosition(head)) return null;
  if (JSON.stringify({ anchor, head }).length > MAX_CURSOR_JSON) return null;
  return { anchor, head };
}

/** The JSON of a Y.RelativePosition: {type?, tname?, item?, assoc?}, ids as {client, clock}. */
function isRelativePosition(p: unknown): boolean {
  if (typeof p !== 'object' || p === null || Array.isArray(p)) return false;
  const r = p as Record<string, unknown>;
  const isId = (v: unknown) => v === undefined || v === null || (typeof v === 'object' && Number.isSafeInteger((v as { client?: unknown }).client) && Number.isSafeInteger((v as { clock?: unknown }).clock));
  if (!isId(r.item) || !isId(r.type)) return false;
  if (r.tname !== undefined && r.tname !== null && typeof r.tname !== 'string') return false;
  if (r.assoc !== undefined && r.assoc !== null && typeof r.assoc !== 'number') return false;
  return true;
}

/** y-protocols' awareness update: count, then per client its id, clock and JSON state. */
export function decodePresence(update: Uint8Array): PresenceEntry[] {
  const d = decoding.createDecoder(update);
  const n = decoding.readVarUint(d);
  if (n > MAX_PRESENCE_ENTRIES) throw new Error(`${n} awareness clients in one update`);
  const out: PresenceEntry[] = [];
  for (let i = 0; i < n; i++) {
    const clientId = decoding.readVarUint(d);
    const clock = decoding.readVarUint(d);
    const state = JSON.parse(decoding.readVarString(d)) as unknown;
    out.push({ clientId, clock, state: state === null ? null : (state as PresenceState) });
  }
  if (decoding.hasContent(d)) throw new Error('bytes after the awareness update');
  return out;
}

export function encodePresence(entries: PresenceEntry[]): Uint8Array {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, entries.length);
  for (const x of entries) {
    encoding.writeVarUint(e, x.clientId);
    encoding.writeVarUint(e, x.clock);
    encoding.writeVarString(e, JSON.stringify(x.state));
  }
  return encoding.toUint8Array(e);
}
