// What a whiteboard page's document carries, and how a browser merges it into its scene.
//
// A page is document `page-<id>` (docs/content.md). Each update is the JSON of the Excalidraw
// elements that changed since the sender's last update: `{"v":1,"elements":[…]}`; a snapshot
// has the same shape and holds the whole scene, deleted elements included (a deletion is an
// element with `isDeleted`, so it must outlive compaction to win over an older copy).
//
// Merging is Excalidraw's own rule, applied per element: the higher `version` wins; on equal
// versions the lower `versionNonce` wins, so every browser settles on the same element no
// matter in which order concurrent edits arrive. What arrives is checked before it is used:
// a malformed update is dropped whole (nothing off the wire may crash the board).
//
// This module has no Excalidraw import, so it runs (and is tested) in Node.

/** An element as it travels: Excalidraw's fields, of which we rely on these. */
export interface WireElement {
  id: string;
  type: string;
  version: number;
  versionNonce: number;
  isDeleted?: boolean;
  /** Excalidraw's fractional index: the element's place in the z-order. */
  index?: string | null;
  [field: string]: unknown;
}

export const UPDATE_VERSION = 1;
/** More elements than this in one update is not something our client sends. */
export const MAX_ELEMENTS = 20_000;
const ID_RE = /^[A-Za-z0-9_\-:.]{1,128}$/;

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

export function encodeUpdate(elements: readonly WireElement[]): Uint8Array<ArrayBuffer> {
  return enc.encode(JSON.stringify({ v: UPDATE_VERSION, elements }));
}

/** Why an update was refused (for the console: a bad update is skipped, never thrown on). */
export class UpdateError extends Error {
  override name = 'UpdateError';
}

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v);
}

/** Checks one element's fields that merging and drawing rely on; null when it will not do. */
export function checkElement(v: unknown): WireElement | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const e = v as Record<string, unknown>;
  if (typeof e.id !== 'string' || !ID_RE.test(e.id)) return null;
  if (typeof e.type !== 'string' || e.type.length === 0 || e.type.length > 32) return null;
  if (!isInt(e.version) || e.version < 0 || !isInt(e.versionNonce)) return null;
  if (e.isDeleted !== undefined && typeof e.isDeleted !== 'boolean') return null;
  if (e.index !== undefined && e.index !== null && typeof e.index !== 'string') return null;
  for (const k of ['x', 'y', 'width', 'height', 'angle'] as const) {
    if (e[k] !== undefined && (typeof e[k] !== 'number' || !Number.isFinite(e[k]))) return null;
  }
  return e as WireElement;
}

/** The elements of an update or snapshot; throws UpdateError naming what is wrong. */
export function decodeUpdate(bytes: Uint8Array): WireElement[] {
  let v: unknown;
  try {
    v = JSON.parse(dec.decode(bytes));
  } catch {
    throw new UpdateError('the update is not UTF-8 JSON');
  }
  if (typeof v !== 'object' || v === null) throw new UpdateError('the update is not a JSON object');
  const o = v as { v?: unknown; elements?: unknown };
  if (o.v !== UPDATE_VERSION) throw new UpdateError(`the update has version ${String(o.v)}, not ${UPDATE_VERSION}`);
  if (!Array.isArray(o.elements)) throw new UpdateError('the update has no elements array');
  if (o.elements.length > MAX_ELEMENTS) throw new UpdateError(`the update has ${o.elements.length} elements, more than ${MAX_ELEMENTS}`);
  const out: WireElement[] = [];
  for (let i = 0; i < o.elements.length; i++) {
    const e = checkElement(o.elements[i]);
    if (!e) throw new UpdateError(`element ${i} of the update is malformed`);
    out.push(e);
  }
  return out;
}

/** Whether `a` (arriving) wins over `b` (held): higher version, then lower versionNonce. */
export function wins(a: Pick<WireElement, 'version' | 'versionNonce'>, b: Pick<WireElement, 'version' | 'versionNonce'>): boolean {
  if (a.version !== b.version) return a.version > b.version;
  return a.versionNonce < b.versionNonce;
}

/** Orders by fractional index (elements without one keep their place relative to each other). */
function byIndex(elements: WireElement[]): WireElement[] {
  const indexed = elements.map((e, i) => ({ e, i }));
  indexed.sort((p, q) => {
    const a = p.e.index;
    const b = q.e.index;
    if (typeof a === 'string' && typeof b === 'string' && a !== b) return a < b ? -1 : 1;
    return p.i - q.i;
  });
  return indexed.map((x) => x.e);
}

/**
 * Merges `incoming` into `current`: the scene to show, or null when nothing changed.
 * `keep`: ids that stay as they are here (an element we are drawing right now).
 */
export function reconcile<E extends WireElement>(current: readonly E[], incoming: readonly WireElement[], keep: ReadonlySet<string> = new Set()): E[] | null {
  const byId = new Map<string, E>();
  for (const e of current) byId.set(e.id, e);
  let changed = false;
  for (const e of incoming) {
    if (keep.has(e.id)) continue;
    const held = byId.get(e.id);
    if (held && !wins(e, held)) continue;
    byId.set(e.id, e as E);
    changed = true;
  }
  if (!changed) return null;
  return byIndex([...byId.values()]) as E[];
}

/**
 * Splits elements into updates of at most `maxBytes` of JSON each (a document update has a
 * size limit). An element bigger than that on its own goes in `tooBig`.
 */
export function splitUpdates(elements: readonly WireElement[], maxBytes: number): { updates: Uint8Array<ArrayBuffer>[]; tooBig: WireElement[] } {
  const updates: Uint8Array<ArrayBuffer>[] = [];
  const tooBig: WireElement[] = [];
  const overhead = encodeUpdate([]).length;
  let batch: string[] = [];
  let size = overhead;
  const flush = () => {
    if (batch.length === 0) return;
    updates.push(enc.encode(`{"v":${UPDATE_VERSION},"elements":[${batch.join(',')}]}`));
    batch = [];
    size = overhead;
  };
  for (const e of elements) {
    const json = JSON.stringify(e);
    const n = enc.encode(json).length + 1;
    if (n + overhead > maxBytes) {
      tooBig.push(e);
      continue;
    }
    if (size + n > maxBytes) flush();
    batch.push(json);
    size += n;
  }
  flush();
  return { updates, tooBig };
}

/**
 * What of our scene the others have not had yet. Remembers the version of every element as
 * last sent or received, so an element is sent again only when it changed here since.
 */
export class Outbox {
  private readonly known = new Map<string, { version: number; versionNonce: number }>();

  /** Elements of `scene` that changed since we last sent or received them; marks them sent. */
  take(scene: readonly WireElement[], skip?: (e: WireElement) => boolean): WireElement[] {
    const out: WireElement[] = [];
    for (const e of scene) {
      if (skip?.(e)) continue;
      const k = this.known.get(e.id);
      if (k && k.version === e.version && k.versionNonce === e.versionNonce) continue;
      // An element we hold in an older version than we received is not ours to send back.
      if (k && !wins(e, k)) continue;
      out.push(e);
      this.known.set(e.id, { version: e.version, versionNonce: e.versionNonce });
    }
    return out;
  }

  /** Elements that came from others (or are now shown): not to be echoed. */
  saw(elements: readonly WireElement[]): void {
    for (const e of elements) {
      const k = this.known.get(e.id);
      if (!k || wins(e, k)) this.known.set(e.id, { version: e.version, versionNonce: e.versionNonce });
    }
  }

  /** These were not sent after all: they go with the next take. */
  forget(ids: readonly string[]): void {
    for (const id of ids) this.known.delete(id);
  }

  clear(): void {
    this.known.clear();
  }
}
