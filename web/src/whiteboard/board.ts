// The whiteboard as the meeting shows it: a toggle in the control bar, and when open, a bar
// (presenter, page N of M, follow, lock badge, export, upload, clear) above the drawing surface.
// The surface (Excalidraw) and the PDF tools are separate bundles under assets/lazy/, loaded
// the first time they are needed.
//
// Everything drawn travels as documents the server keeps (docs/content.md; pages.ts and
// scene.ts say what each holds): an update is the JSON of the elements that changed, sent at
// most every 50 ms, sealed in an encrypted room; what arrives is merged element by element.
// The server checks who may write; we follow its locks in the interface (view only).
import { ApiError } from '../api';
import type { DocHandle } from '../contentdocs';
import { h, icon, replace } from '../dom';
import { serverUrl } from '../embed';
import type { MeetingContent } from '../meetingcontent';
import { apiErrorText } from '../messages';
import { confirmDialog } from '../ui/modal';
import { toast } from '../ui/toasts';
import { MAX_PAGE_BYTES, downloadFile, newFileId, uploadFile } from '../files';
import { FIRST_PAGE, PageList, decodeDocument, decodePageOp, decodeView, documentPageId, encodeDocument, encodePageOp, encodeView, pageDoc, type BoardPage, type PageImage, type ViewState } from './pages';
import { Outbox, UpdateError, decodeUpdate, encodeUpdate, reconcile, splitUpdates, type WireElement } from './scene';
import type { BoardSurface, ImageFile, PdfModule, SurfaceModule } from './surface';

/** How often at most our changes go out. */
const SEND_EVERY_MS = 50;
/** A document update's body is at most 64 KiB of base64 (sealed: 29 bytes more). */
const MAX_UPDATE_BYTES = 46 * 1024;
/** Past this many updates since the last snapshot, the writer who crossed it compacts. */
const COMPACT_AFTER = 300;
const VIEW_EVERY_MS = 300;
const PAGE_RENDER_SIDE = 1600;
const OFFICE_RE = /\.(docx?|pptx?|xlsx?|odt|odp|ods|rtf)$/i;

export interface WhiteboardOptions {
  content: MeetingContent;
  /** The presenter's identity now (null: nobody presents). */
  presenter: () => string | null;
  /** A participant's display name. */
  name: (identity: string) => string;
  /** The board opened or closed (the meeting makes room for it). */
  onToggle: (open: boolean) => void;
}

let surfaceModule: Promise<SurfaceModule> | null = null;
let pdfModule: Promise<PdfModule> | null = null;

/** Where a lazy asset is, as an absolute URL (import() in a classic script wants one). */
function lazyUrl(base: string, file: string): string {
  return new URL(serverUrl(base, `assets/lazy/${file}`), location.href).href;
}

function loadSurface(base: string): Promise<SurfaceModule> {
  if (!surfaceModule) {
    // Excalidraw loads its fonts from here rather than from a CDN.
    (window as unknown as { EXCALIDRAW_ASSET_PATH: string }).EXCALIDRAW_ASSET_PATH = lazyUrl(base, '');
    const css = h('link', { rel: 'stylesheet', href: lazyUrl(base, 'whiteboard.css') });
    document.head.appendChild(css);
    surfaceModule = (import(/* a URL, not bundled */ lazyUrl(base, 'whiteboard.js')) as Promise<SurfaceModule>).catch((e) => {
      surfaceModule = null;
      css.remove();
      throw new Error(`the whiteboard could not be loaded: ${e instanceof Error ? e.message : String(e)}`);
    });
  }
  return surfaceModule;
}

function loadPdf(base: string): Promise<PdfModule> {
  if (!pdfModule) {
    pdfModule = (import(lazyUrl(base, 'pdf.js')) as Promise<PdfModule>).catch((e) => {
      pdfModule = null;
      throw new Error(`the PDF tools could not be loaded: ${e instanceof Error ? e.message : String(e)}`);
    });
  }
  return pdfModule;
}

/** The image type of `bytes` by its first bytes (never trusting a stated type). */
function imageMime(bytes: Uint8Array): string | null {
  if (bytes.length > 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) return 'image/png';
  if (bytes.length > 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'image/jpeg';
  return null;
}

function dataUrl(bytes: Uint8Array, mime: string): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return `data:${mime};base64,${btoa(s)}`;
}

function randomId(n: number): string {
  return newFileId().replace(/[^A-Za-z0-9]/g, '').slice(0, n) || 'p';
}

function download(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = h('a', { href: url, download: name, hidden: true });
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** The page open on the board: its document and what we have not sent yet. */
interface OpenPage {
  id: string;
  page: BoardPage;
  handle: DocHandle | null;
  outbox: Outbox;
  /** The background element (a document's page), kept beneath every scene. */
  background: WireElement | null;
  closed: boolean;
}

export class Whiteboard {
  /** The control-bar toggle. */
  readonly button: HTMLButtonElement;
  /** The board: its bar and the surface (hidden while closed). */
  readonly el: HTMLElement;
  private readonly canvasHost: HTMLElement;
  private readonly presenterEl: HTMLElement;
  private readonly pageLabel: HTMLElement;
  private readonly lockBadge: HTMLElement;
  private readonly progressEl: HTMLElement;
  private readonly followBtn: HTMLButtonElement;
  private readonly prevBtn: HTMLButtonElement;
  private readonly nextBtn: HTMLButtonElement;
  private readonly addBtn: HTMLButtonElement;
  private readonly uploadInput: HTMLInputElement;
  private readonly uploadLabel: HTMLElement;
  private readonly clearBtn: HTMLButtonElement | null;

  private surface: BoardSurface | null = null;
  private opening: Promise<void> | null = null;
  private isOpen = false;
  private readonly list = new PageList();
  private meta: DocHandle[] = [];
  private viewHandle: DocHandle | null = null;
  private page: OpenPage | null = null;
  private follow = true;
  private presenterView: ViewState | null = null;
  private sendTimer: ReturnType<typeof setTimeout> | null = null;
  private sending: Promise<void> | null = null;
  private viewTimer: ReturnType<typeof setTimeout> | null = null;
  private lastViewSent = '';
  private readonly images = new Map<string, Promise<ImageFile | null>>();
  /** Page images handed to the surface (for the page and the tests). */
  private readonly loadedImages = new Set<string>();
  private compacting = false;
  private warnedTooBig = false;
  private lastWrite: boolean;
  /** A document we put on the board: go to its first page when it arrives. */
  private jumpTo: string | null = null;
  private unsubLocks: () => void;

  constructor(private readonly o: WhiteboardOptions) {
    const c = o.content;
    this.lastWrite = c.mayWrite('whiteboard');
    const label = h('span', { class: 'ctl-label' }, 'Whiteboard');
    this.button = h('button', { class: 'ctl', type: 'button', 'data-testid': 'whiteboard-toggle', 'aria-pressed': 'false', title: 'Open the whiteboard' }, h('span', { class: 'ctl-icon' }, icon('grid')), label);
    this.button.addEventListener('click', () => void this.toggle());

    const btn = (testid: string, text: string, title: string, onClick: () => void) => {
      const b = h('button', { class: 'wb-btn', type: 'button', 'data-testid': testid, title }, text);
      b.addEventListener('click', onClick);
      return b;
    };
    this.presenterEl = h('span', { class: 'wb-presenter', 'data-testid': 'whiteboard-presenter' });
    this.pageLabel = h('span', { class: 'wb-page', 'data-testid': 'whiteboard-page-label' });
    this.lockBadge = h('span', { class: 'wb-badge', 'data-testid': 'whiteboard-locked', hidden: true, title: 'A host locked the whiteboard for you' }, 'View only');
    this.progressEl = h('span', { class: 'wb-progress', 'data-testid': 'whiteboard-progress', hidden: true });
    this.prevBtn = btn('whiteboard-page-prev', '‹', 'Previous page', () => this.step(-1));
    this.nextBtn = btn('whiteboard-page-next', '›', 'Next page', () => this.step(1));
    this.addBtn = btn('whiteboard-page-add', '+ Page', 'Add a page', () => void this.addPage());
    this.followBtn = btn('whiteboard-follow', 'Follow', 'Follow the presenter’s page', () => this.setFollow(!this.follow));
    this.uploadInput = h('input', {
      type: 'file',
      class: 'wb-file',
      'data-testid': 'whiteboard-upload',
      accept: '.pdf,application/pdf,.doc,.docx,.ppt,.pptx,.xls,.xlsx,.odt,.odp,.ods,.rtf',
      'aria-label': 'Put a document on the board',
    });
    this.uploadInput.addEventListener('change', () => {
      const f = this.uploadInput.files?.[0];
      this.uploadInput.value = '';
      if (f) void this.upload(f);
    });
    this.uploadLabel = h('label', { class: 'wb-btn wb-upload', title: 'Put a PDF on the board' }, 'Document…', this.uploadInput);
    this.clearBtn = c.isAdmin ? btn('whiteboard-clear', 'Clear page', 'Clear this page for everyone', () => void this.clearPage()) : null;
    const bar = h(
      'div',
      { class: 'wb-bar' },
      this.presenterEl,
      this.lockBadge,
      h('span', { class: 'wb-spacer' }),
      this.prevBtn,
      this.pageLabel,
      this.nextBtn,
      this.addBtn,
      this.followBtn,
      this.uploadLabel,
      this.progressEl,
      btn('whiteboard-export-png', 'PNG', 'Export this page as PNG', () => void this.exportPng()),
      btn('whiteboard-export-pdf', 'PDF', 'Export all pages as PDF', () => void this.exportPdf()),
      this.clearBtn,
      btn('whiteboard-close', '×', 'Close the whiteboard', () => void this.toggle()),
    );
    this.canvasHost = h('div', { class: 'wb-canvas', 'data-testid': 'whiteboard-canvas' });
    this.el = h('section', { class: 'whiteboard', 'data-testid': 'whiteboard', hidden: true, 'aria-label': 'Whiteboard' }, bar, this.canvasHost);
    this.unsubLocks = c.onLocks(() => this.locksChanged());
    this.renderBar();
  }

  get opened(): boolean {
    return this.isOpen;
  }

  async toggle(): Promise<void> {
    if (this.isOpen) {
      this.close();
      return;
    }
    this.isOpen = true;
    this.el.hidden = false;
    this.button.setAttribute('aria-pressed', 'true');
    this.button.classList.add('on');
    this.o.onToggle(true);
    try {
      await this.start();
    } catch (e) {
      toast(e instanceof Error ? e.message : String(e), 'error');
      this.close();
    }
  }

  close(): void {
    this.isOpen = false;
    this.el.hidden = true;
    this.button.setAttribute('aria-pressed', 'false');
    this.button.classList.remove('on');
    this.flushNow();
    this.closePage();
    for (const d of this.meta) d.close();
    this.meta = [];
    this.viewHandle = null;
    this.list.resetPages();
    this.list.resetDocuments();
    this.surface?.destroy();
    this.surface = null;
    this.opening = null;
    this.el.dataset.ready = 'false';
    this.o.onToggle(false);
  }

  destroy(): void {
    if (this.isOpen) this.close();
    this.unsubLocks();
  }

  /** The presenter changed: the label, our right to draw, and whom we follow. */
  presenterChanged(): void {
    this.renderBar();
    this.locksChanged();
  }

  private start(): Promise<void> {
    if (!this.opening) this.opening = this.doStart();
    return this.opening;
  }

  private async doStart(): Promise<void> {
    const c = this.o.content;
    this.el.dataset.ready = 'false';
    const mod = await loadSurface(c.api.base);
    if (!this.isOpen) return;
    const surface = await mod.mount(this.canvasHost, {
      viewMode: !c.mayWrite('whiteboard'),
      onChange: () => this.changed(),
      onScroll: () => this.scrolled(),
    });
    if (!this.isOpen) {
      surface.destroy();
      return;
    }
    this.surface = surface;
    this.exposeToTests();
    const docs = c.documents('whiteboard');
    const pages = await docs.open('pages', {
      apply: (bytes) => {
        const op = decodePageOp(bytes);
        if (op) this.list.op(op);
        this.pagesChanged();
      },
      cleared: () => {
        this.list.resetPages();
        this.pagesChanged();
      },
    });
    const documents = await docs.open('documents', {
      apply: (bytes, from) => {
        const d = decodeDocument(bytes);
        if (!d) {
          console.warn(`whiteboard: a document update from ${from} is malformed`);
          return;
        }
        this.list.document(d);
        this.pagesChanged();
        if (this.jumpTo === d.document_id) {
          this.jumpTo = null;
          void this.showPage(documentPageId(d.document_id, 0), true);
        }
      },
      cleared: () => {
        this.list.resetDocuments();
        this.pagesChanged();
      },
    });
    const view = await docs.open('view', {
      apply: (bytes, from) => this.viewArrived(bytes, from),
      cleared: () => {
        this.presenterView = null;
      },
    });
    this.meta = [pages, documents, view];
    this.viewHandle = view;
    if (!this.isOpen) return;
    const start = this.follow && this.presenterView && this.list.pages().some((p) => p.id === this.presenterView?.page) ? this.presenterView.page : FIRST_PAGE;
    await this.showPage(start, false);
    if (this.follow && this.presenterView?.scrollX !== undefined) this.applyView(this.presenterView);
  }

  /**
   * Observation for the browser tests only: where a test's init script put
   * `window.__enclaveTestHooks`, the board lists what it shows (the canvas has no DOM to read).
   * Nothing is driven through it; without the init script it does not exist.
   */
  private exposeToTests(): void {
    const hooks = (window as unknown as { __enclaveTestHooks?: unknown }).__enclaveTestHooks;
    if (typeof hooks !== 'object' || hooks === null) return;
    (hooks as Record<string, unknown>).whiteboard = () => ({
      page: this.page?.id ?? null,
      ready: this.el.dataset.ready === 'true',
      elements: (this.surface?.elements() ?? []).map((e) => ({ id: e.id, type: e.type, text: typeof e.text === 'string' ? e.text : null, isDeleted: !!e.isDeleted, fileId: typeof e.fileId === 'string' ? e.fileId : null })),
      images: [...this.loadedImages],
    });
  }

  // ---- pages ----

  private pagesChanged(): void {
    const pages = this.list.pages();
    // Our page was removed (or cleared away): back to the first.
    if (this.page && !pages.some((p) => p.id === this.page?.id)) void this.showPage(FIRST_PAGE, false);
    // The presenter's page may exist only now (a document arrived after the view did).
    else if (this.follow && this.presenterView && this.page?.id !== this.presenterView.page && pages.some((p) => p.id === this.presenterView?.page) && !this.iPresent()) {
      void this.showPage(this.presenterView.page, false);
    }
    this.renderBar();
  }

  private step(d: number): void {
    const pages = this.list.pages();
    const i = pages.findIndex((p) => p.id === this.page?.id);
    const next = pages[i + d];
    if (!next) return;
    // Going our own way stops following until we turn it on again.
    if (this.follow && !this.iPresent() && this.o.presenter()) this.setFollow(false);
    void this.showPage(next.id, true);
  }

  private async addPage(): Promise<void> {
    const pages = this.meta[0];
    if (!pages) return;
    const id = randomId(10);
    try {
      await pages.append(encodePageOp({ op: 'add', id }));
      this.list.op({ op: 'add', id });
      await this.showPage(id, true);
    } catch (e) {
      toast(`The page could not be added: ${apiErrorText(e)}`, 'error');
    }
  }

  private closePage(): void {
    if (this.sendTimer) clearTimeout(this.sendTimer);
    this.sendTimer = null;
    const p = this.page;
    if (p) {
      p.closed = true;
      p.handle?.close();
    }
    this.page = null;
  }

  /** Opens page `id`: its document's elements, over its background if it has one. */
  private async showPage(id: string, mine: boolean): Promise<void> {
    const surface = this.surface;
    if (!surface) return;
    const bp = this.list.pages().find((p) => p.id === id) ?? this.list.pages()[0];
    if (this.page?.id === bp.id) return;
    this.flushNow();
    this.closePage();
    const page: OpenPage = { id: bp.id, page: bp, handle: null, outbox: new Outbox(), background: null, closed: false };
    this.page = page;
    this.el.dataset.ready = 'false';
    this.el.dataset.page = bp.id;
    if (bp.background) {
      page.background = surface.background(`bg-${bp.background.file_id}`, bp.background.file_id, bp.background.width, bp.background.height);
      void this.loadImage(bp.background).then((img) => {
        if (img && !page.closed) {
          surface.addImage(img.id, img.dataURL, img.mimeType);
          this.loadedImages.add(img.id);
        }
      });
    }
    surface.show(page.background ? [page.background] : []);
    this.renderBar();
    if (mine) this.sendView(true);
    try {
      page.handle = await this.o.content.documents('whiteboard').open(pageDoc(bp.id), {
        apply: (bytes, from, seq) => this.applyToPage(page, bytes, from, seq),
        cleared: () => {
          if (page.closed) return;
          page.outbox.clear();
          surface.show(page.background ? [page.background] : []);
        },
        unreadable: (from, seq, err) => console.warn(`whiteboard: update ${seq} of ${pageDoc(bp.id)} from ${from} does not open: ${err instanceof Error ? err.message : String(err)}`),
      });
    } catch (e) {
      if (!page.closed) toast(`The page could not be loaded: ${apiErrorText(e)}`, 'error');
      return;
    }
    if (page.closed) {
      page.handle.close();
      return;
    }
    this.el.dataset.ready = 'true';
    this.maybeCompact(page, false);
  }

  private applyToPage(page: OpenPage, bytes: Uint8Array, from: string, seq: number): void {
    const surface = this.surface;
    if (page.closed || !surface) return;
    let incoming: WireElement[];
    try {
      incoming = decodeUpdate(bytes).filter((e) => !e.id.startsWith('bg-'));
    } catch (e) {
      console.warn(`whiteboard: update ${seq} of ${pageDoc(page.id)} from ${from} is refused: ${e instanceof UpdateError ? e.message : String(e)}`);
      return;
    }
    const merged = reconcile(surface.elements(), incoming, surface.editing());
    page.outbox.saw(incoming);
    if (merged) surface.show(merged);
    if (from === this.o.content.me) this.maybeCompact(page, true);
  }

  /** Past COMPACT_AFTER updates, the writer whose update crossed it sends the whole scene. */
  private maybeCompact(page: OpenPage, ours: boolean): void {
    const h = page.handle;
    const surface = this.surface;
    if (!h || !surface || this.compacting || h.sinceSnapshot <= COMPACT_AFTER) return;
    if (!ours || !this.o.content.mayWrite('whiteboard')) return;
    this.compacting = true;
    const scene = surface.elements().filter((e) => !e.id.startsWith('bg-'));
    void h
      .snapshot(encodeUpdate(scene), h.head)
      .catch((e) => console.warn(`whiteboard: the snapshot of ${pageDoc(page.id)} was refused: ${apiErrorText(e)}`))
      .finally(() => {
        this.compacting = false;
      });
  }

  // ---- our changes ----

  private changed(): void {
    if (!this.page?.handle || !this.o.content.mayWrite('whiteboard')) return;
    if (this.sendTimer) return;
    this.sendTimer = setTimeout(() => {
      this.sendTimer = null;
      void this.flush();
    }, SEND_EVERY_MS);
  }

  /** Sends what is pending now (before leaving a page or the board). */
  private flushNow(): void {
    if (this.sendTimer) {
      clearTimeout(this.sendTimer);
      this.sendTimer = null;
      void this.flush();
    }
  }

  private async flush(): Promise<void> {
    // One batch at a time, in order; what changes meanwhile goes in the next.
    if (this.sending) {
      await this.sending;
      this.changed();
      return;
    }
    const page = this.page;
    const surface = this.surface;
    const handle = page?.handle;
    if (!page || !surface || !handle) return;
    const changed = page.outbox.take(surface.elements(), (e) => e.id.startsWith('bg-'));
    if (changed.length === 0) return;
    const { updates, tooBig } = splitUpdates(changed, MAX_UPDATE_BYTES);
    if (tooBig.length && !this.warnedTooBig) {
      this.warnedTooBig = true;
      toast('A drawing is too large to share with the others; split it into smaller ones.', 'warning');
    }
    this.sending = (async () => {
      for (const u of updates) {
        try {
          await handle.append(u);
        } catch (e) {
          // Not sent: it goes again with the next change (or in a moment).
          page.outbox.forget(decodeUpdate(u).map((x) => x.id));
          if (!page.closed) {
            if (e instanceof ApiError && e.httpStatus === 429) setTimeout(() => this.changed(), 1000);
            else toast(`The whiteboard change was not saved: ${apiErrorText(e)}`, 'error');
          }
          return;
        }
      }
    })().finally(() => {
      this.sending = null;
    });
    await this.sending;
  }

  // ---- presenter and follow ----

  private iPresent(): boolean {
    return this.o.presenter() === this.o.content.me;
  }

  private setFollow(on: boolean): void {
    this.follow = on;
    this.renderBar();
    if (on && this.presenterView) {
      void this.showPage(this.presenterView.page, false).then(() => this.presenterView && this.applyView(this.presenterView));
    }
  }

  private viewArrived(bytes: Uint8Array, from: string): void {
    // Only the presenter leads; anyone else's view is theirs alone.
    if (from !== this.o.presenter()) return;
    const v = decodeView(bytes);
    if (!v) return;
    this.presenterView = v;
    if (from === this.o.content.me || !this.follow || !this.surface || !this.page) return;
    if (v.page !== this.page.id) void this.showPage(v.page, false).then(() => this.applyView(v));
    else this.applyView(v);
  }

  private applyView(v: ViewState): void {
    if (this.surface && v.scrollX !== undefined && v.scrollY !== undefined && this.page?.id === v.page) {
      this.surface.setView({ scrollX: v.scrollX, scrollY: v.scrollY, zoom: v.zoom ?? 1 });
    }
  }

  private scrolled(): void {
    if (!this.iPresent() || this.viewTimer) return;
    this.viewTimer = setTimeout(() => {
      this.viewTimer = null;
      this.sendView(false);
    }, VIEW_EVERY_MS);
  }

  /** The presenter tells where they are (the page at once, scroll and zoom throttled). */
  private sendView(pageOnly: boolean): void {
    const h = this.viewHandle;
    if (!h || !this.page || !this.iPresent() || !this.o.content.mayWrite('whiteboard')) return;
    const v: ViewState = { page: this.page.id };
    if (!pageOnly && this.surface) Object.assign(v, this.surface.view());
    const key = JSON.stringify(v);
    if (key === this.lastViewSent) return;
    this.lastViewSent = key;
    void h
      .append(encodeView(v))
      .then(() => {
        if (h.sinceSnapshot > COMPACT_AFTER) return h.snapshot(encodeView(v), h.head);
      })
      .catch(() => {
        this.lastViewSent = '';
      });
  }

  // ---- locks ----

  private locksChanged(): void {
    const may = this.o.content.mayWrite('whiteboard');
    if (may !== this.lastWrite) {
      toast(may ? 'You may draw on the whiteboard again.' : 'A host locked the whiteboard for you: view only.', may ? 'info' : 'warning');
      this.lastWrite = may;
    }
    this.surface?.setViewMode(!may);
    this.renderBar();
  }

  // ---- the bar ----

  private renderBar(): void {
    const c = this.o.content;
    const pages = this.list.pages();
    const i = Math.max(0, pages.findIndex((p) => p.id === this.page?.id));
    const bp = pages[i];
    const doc = bp?.document ? ` · ${bp.document.name} ${bp.document.page}/${bp.document.pages}` : '';
    this.pageLabel.textContent = `Page ${i + 1} of ${pages.length}${doc}`;
    this.el.dataset.pageIndex = String(i + 1);
    this.el.dataset.pages = String(pages.length);
    this.prevBtn.disabled = i === 0;
    this.nextBtn.disabled = i >= pages.length - 1;
    const presenter = this.o.presenter();
    replace(this.presenterEl, presenter ? (presenter === c.me ? 'You are presenting' : `${this.o.name(presenter)} is presenting`) : 'Nobody is presenting');
    this.presenterEl.dataset.identity = presenter ?? '';
    const may = c.mayWrite('whiteboard');
    this.lockBadge.hidden = may;
    this.el.dataset.locked = String(!may);
    this.addBtn.hidden = !may;
    this.uploadLabel.hidden = !may;
    this.uploadInput.disabled = !may;
    this.followBtn.hidden = !presenter || presenter === c.me;
    this.followBtn.setAttribute('aria-pressed', String(this.follow));
    this.followBtn.classList.toggle('on', this.follow);
  }

  // ---- images, clear, export ----

  private loadImage(img: PageImage): Promise<ImageFile | null> {
    let p = this.images.get(img.file_id);
    if (!p) {
      p = downloadFile({ api: this.o.content.api, sealer: this.o.content.sealer, fileId: img.file_id })
        .then(({ bytes }) => {
          if (bytes.length > MAX_PAGE_BYTES) throw new Error(`file ${img.file_id} is larger than a page image may be`);
          const mime = imageMime(bytes);
          if (!mime) throw new Error(`file ${img.file_id} is not a PNG or JPEG image`);
          return { id: img.file_id, dataURL: dataUrl(bytes, mime), mimeType: mime };
        })
        .catch((e) => {
          this.images.delete(img.file_id);
          toast(`A page image could not be loaded: ${e instanceof Error ? e.message : String(e)}`, 'error');
          return null;
        });
      this.images.set(img.file_id, p);
    }
    return p;
  }

  private async clearPage(): Promise<void> {
    const page = this.page;
    if (!page) return;
    const ok = await confirmDialog({ title: 'Clear this page for everyone?', body: 'Everything drawn on this page is removed for everyone in the meeting.', confirm: 'Clear page', danger: true });
    if (!ok) return;
    try {
      await this.o.content.api.contentClear('whiteboard', pageDoc(page.id));
    } catch (e) {
      toast(`The page could not be cleared: ${apiErrorText(e)}`, 'error');
    }
  }

  private pageNumber(): number {
    return Math.max(0, this.list.pages().findIndex((p) => p.id === this.page?.id)) + 1;
  }

  private async exportPng(): Promise<void> {
    if (!this.surface) return;
    try {
      download(await this.surface.exportPng(), `whiteboard-page-${this.pageNumber()}.png`);
    } catch (e) {
      toast(`The page could not be exported: ${e instanceof Error ? e.message : String(e)}`, 'error');
    }
  }

  /** The elements of a page that is not open, from the server. */
  private async pageElements(id: string): Promise<WireElement[]> {
    let scene: WireElement[] = [];
    const h = await this.o.content.documents('whiteboard').open(pageDoc(id), {
      apply: (bytes) => {
        try {
          scene = reconcile(scene, decodeUpdate(bytes).filter((e) => !e.id.startsWith('bg-'))) ?? scene;
        } catch {
          // A malformed update is left out of the export as it is left off the board.
        }
      },
      cleared: () => {
        scene = [];
      },
    });
    h.close();
    return scene;
  }

  private async exportPdf(): Promise<void> {
    const surface = this.surface;
    if (!surface) return;
    this.progress('Exporting…');
    try {
      const pdf = await loadPdf(this.o.content.api.base);
      const out: Array<{ png: Uint8Array; width: number; height: number }> = [];
      for (const p of this.list.pages()) {
        let elements: WireElement[];
        if (p.id === this.page?.id) elements = surface.elements().filter((e) => !e.isDeleted);
        else {
          elements = await this.pageElements(p.id);
          if (p.background) elements = [surface.background(`bg-${p.background.file_id}`, p.background.file_id, p.background.width, p.background.height), ...elements];
        }
        const files: ImageFile[] = [];
        if (p.background) {
          const img = await this.loadImage(p.background);
          if (img) files.push(img);
        }
        const live = elements.filter((e) => !e.isDeleted);
        const blob = live.length ? await surface.exportPng(live, files) : null;
        if (!blob) {
          out.push({ png: await blankPng(), width: 800, height: 600 });
          continue;
        }
        const bmp = await createImageBitmap(blob);
        out.push({ png: new Uint8Array(await blob.arrayBuffer()), width: bmp.width, height: bmp.height });
        bmp.close();
      }
      const bytes = await pdf.makePdf(out);
      download(new Blob([bytes], { type: 'application/pdf' }), 'whiteboard.pdf');
    } catch (e) {
      toast(`The board could not be exported: ${e instanceof Error ? e.message : String(e)}`, 'error');
    } finally {
      this.progress(null);
    }
  }

  // ---- documents on the board ----

  private progress(text: string | null): void {
    this.progressEl.hidden = text === null;
    this.progressEl.textContent = text ?? '';
  }

  private async upload(file: File): Promise<void> {
    const c = this.o.content;
    const isPdf = /\.pdf$/i.test(file.name) || file.type === 'application/pdf';
    const isOffice = OFFICE_RE.test(file.name);
    if (!isPdf && !isOffice) {
      toast(`"${file.name}" is not a PDF or an office document.`, 'error');
      return;
    }
    if (isOffice && c.encrypted) {
      toast('Office files cannot be converted in an end-to-end encrypted room: export it as PDF first.', 'error');
      return;
    }
    const bytes = new Uint8Array(await file.arrayBuffer());
    if (!c.encrypted) {
      // A plain room: the server converts (and appends the document itself).
      try {
        this.progress(`Uploading ${file.name}…`);
        const { file_id: fileId } = await uploadFile({ api: c.api, sealer: c.sealer, me: c.me, purpose: 'whiteboard', name: file.name, mime: file.type || 'application/octet-stream', file: bytes, features: c.verify.room.features, onProgress: (n, t) => this.progress(`Uploading ${file.name}: ${Math.round((100 * n) / t)}%`) });
        this.progress(`Converting ${file.name}…`);
        const r = await c.api.whiteboardConvert(fileId);
        this.jumpTo = r.document_id;
        toast(`"${file.name}" is being put on the board.`, 'info');
        this.progress(null);
        return;
      } catch (e) {
        if (!isPdf) {
          this.progress(null);
          toast(`"${file.name}" could not be converted: ${apiErrorText(e)}`, 'error');
          return;
        }
        // The server did not convert it: a PDF renders in this browser just as well.
        console.warn(`whiteboard: the server did not convert ${file.name} (${apiErrorText(e)}); rendering it here`);
      }
    }
    try {
      await this.renderAndUpload(file.name, bytes);
    } catch (e) {
      toast(`"${file.name}" could not be put on the board: ${e instanceof Error && !(e instanceof ApiError) ? e.message : apiErrorText(e)}`, 'error');
    } finally {
      this.progress(null);
    }
  }

  /** Renders a PDF's pages here, uploads each as a (sealed) image, then announces the document. */
  private async renderAndUpload(name: string, bytes: Uint8Array): Promise<void> {
    const c = this.o.content;
    const documents = this.meta[1];
    if (!documents) throw new Error('the board is not open');
    this.progress(`Reading ${name}…`);
    const pdf = await loadPdf(c.api.base);
    const rendered = await pdf.renderPdf(bytes, PAGE_RENDER_SIDE, (n, t) => this.progress(`Rendering ${name}: page ${n} of ${t}`));
    const pages: PageImage[] = [];
    for (let i = 0; i < rendered.length; i++) {
      const r = rendered[i];
      this.progress(`Uploading ${name}: page ${i + 1} of ${rendered.length}`);
      const { file_id: fileId } = await uploadFile({ api: c.api, sealer: c.sealer, me: c.me, purpose: 'page', name: `${name} ${i + 1}.png`, mime: 'image/png', file: r.png, features: c.verify.room.features });
      pages.push({ file_id: fileId, width: r.width, height: r.height });
    }
    const documentId = randomId(16);
    this.jumpTo = documentId;
    await documents.append(encodeDocument({ document_id: documentId, name, pages }));
    toast(`"${name}" is on the board (${pages.length} page${pages.length === 1 ? '' : 's'}).`, 'success');
  }
}

/** An empty white page for the PDF (a page with nothing drawn on it). */
async function blankPng(): Promise<Uint8Array> {
  const c = document.createElement('canvas');
  c.width = 800;
  c.height = 600;
  const ctx = c.getContext('2d');
  if (ctx) {
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, 800, 600);
  }
  const blob = await new Promise<Blob | null>((r) => c.toBlob(r, 'image/png'));
  if (!blob) throw new Error('no blank page could be drawn');
  return new Uint8Array(await blob.arrayBuffer());
}
