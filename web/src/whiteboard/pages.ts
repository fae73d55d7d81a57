// The board's pages and documents (docs/content.md): document `pages` is a log of page
// additions and removals, document `documents` one update per document put on the board, and
// document `view` where the presenter says which page (and where on it) they show. Each page's
// elements are in document `page-<id>`. Everything here is checked as it comes off the wire.

export interface PageImage {
  file_id: string;
  width: number;
  height: number;
}

export interface BoardPage {
  id: string;
  /** A document's page: its image lies locked beneath the drawing. */
  background: PageImage | null;
  /** The document's name and the page's number in it (for the page label). */
  document: { name: string; page: number; pages: number } | null;
}

/** The page every board has (it is never listed). */
export const FIRST_PAGE = 'main';
const PAGE_ID_RE = /^[A-Za-z0-9_-]{1,48}$/;
const FILE_ID_RE = /^[A-Za-z0-9_-]{16,64}$/;
const MAX_SIDE = 20_000;

export function pageDoc(id: string): string {
  return `page-${id}`;
}

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

function json(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(dec.decode(bytes));
  } catch {
    return undefined;
  }
}

export type PageOp = { op: 'add'; id: string } | { op: 'remove'; id: string };

export function encodePageOp(op: PageOp): Uint8Array<ArrayBuffer> {
  return enc.encode(JSON.stringify(op));
}

export function decodePageOp(bytes: Uint8Array): PageOp | null {
  const v = json(bytes) as { op?: unknown; id?: unknown } | undefined;
  if (!v || typeof v !== 'object') return null;
  if ((v.op !== 'add' && v.op !== 'remove') || typeof v.id !== 'string' || !PAGE_ID_RE.test(v.id)) return null;
  return { op: v.op, id: v.id };
}

export interface BoardDocument {
  document_id: string;
  name: string;
  pages: PageImage[];
}

export function encodeDocument(d: BoardDocument): Uint8Array<ArrayBuffer> {
  return enc.encode(JSON.stringify(d));
}

export function decodeDocument(bytes: Uint8Array): BoardDocument | null {
  const v = json(bytes) as { document_id?: unknown; name?: unknown; pages?: unknown } | undefined;
  if (!v || typeof v !== 'object') return null;
  if (typeof v.document_id !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(v.document_id)) return null;
  const name = typeof v.name === 'string' ? v.name.slice(0, 200) : '';
  if (!Array.isArray(v.pages) || v.pages.length === 0 || v.pages.length > 500) return null;
  const pages: PageImage[] = [];
  for (const p of v.pages as unknown[]) {
    const q = p as { file_id?: unknown; width?: unknown; height?: unknown } | null;
    if (!q || typeof q !== 'object') return null;
    if (typeof q.file_id !== 'string' || !FILE_ID_RE.test(q.file_id)) return null;
    if (typeof q.width !== 'number' || typeof q.height !== 'number') return null;
    if (!(q.width > 0 && q.width <= MAX_SIDE && q.height > 0 && q.height <= MAX_SIDE)) return null;
    pages.push({ file_id: q.file_id, width: q.width, height: q.height });
  }
  return { document_id: v.document_id, name, pages };
}

/** The page id of a document's page: short enough for `page-<id>` to be a document id. */
export function documentPageId(documentId: string, n: number): string {
  return `d${documentId.replace(/[^A-Za-z0-9]/g, '').slice(0, 32)}-${n + 1}`;
}

/** Where the presenter is: a page and, when known, where on it they look. */
export interface ViewState {
  page: string;
  scrollX?: number;
  scrollY?: number;
  zoom?: number;
}

export function encodeView(v: ViewState): Uint8Array<ArrayBuffer> {
  return enc.encode(JSON.stringify(v));
}

export function decodeView(bytes: Uint8Array): ViewState | null {
  const v = json(bytes) as Record<string, unknown> | undefined;
  if (!v || typeof v !== 'object' || typeof v.page !== 'string' || !PAGE_ID_RE.test(v.page)) return null;
  const out: ViewState = { page: v.page };
  const num = (x: unknown) => typeof x === 'number' && Number.isFinite(x) && Math.abs(x) < 1e7;
  if (num(v.scrollX) && num(v.scrollY)) {
    out.scrollX = v.scrollX as number;
    out.scrollY = v.scrollY as number;
  }
  if (num(v.zoom) && (v.zoom as number) >= 0.1 && (v.zoom as number) <= 30) out.zoom = v.zoom as number;
  return out;
}

/** The list of pages as the three documents make it: the first page, added pages, documents' pages. */
export class PageList {
  private readonly added: string[] = [];
  private readonly removed = new Set<string>();
  private readonly docs = new Map<string, BoardDocument>();

  op(o: PageOp): void {
    if (o.op === 'add') {
      if (!this.added.includes(o.id)) this.added.push(o.id);
      this.removed.delete(o.id);
    } else if (o.id !== FIRST_PAGE) {
      this.removed.add(o.id);
    }
  }

  document(d: BoardDocument): void {
    // The same document again (a repeated update) replaces itself, keeping its place.
    this.docs.set(d.document_id, d);
  }

  resetPages(): void {
    this.added.length = 0;
    this.removed.clear();
  }

  resetDocuments(): void {
    this.docs.clear();
  }

  pages(): BoardPage[] {
    const out: BoardPage[] = [{ id: FIRST_PAGE, background: null, document: null }];
    for (const id of this.added) if (!this.removed.has(id) && id !== FIRST_PAGE) out.push({ id, background: null, document: null });
    for (const d of this.docs.values()) {
      d.pages.forEach((p, i) => {
        const id = documentPageId(d.document_id, i);
        if (!this.removed.has(id)) out.push({ id, background: p, document: { name: d.name, page: i + 1, pages: d.pages.length } });
      });
    }
    return out;
  }
}
