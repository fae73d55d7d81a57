// The shared notepad's panel (main bundle): the head with who is in the notes, the exports and
// the lock; the editor itself comes from the lazy bundle (lazy.ts), loaded on first open. The
// text lives in the server's log of kind `notepad`, document `main` (docs/content.md), sealed
// in an encrypted room; presence goes as data messages on TOPIC_NOTEPAD, sealed like chat.
//
// The editor session lives while the panel is open: opening loads the log (so reopening is
// a late join), closing tells the others we left the notes.

import { fromBase64, toBase64 } from '../content';
import { h, replace } from '../dom';
import { serverUrl } from '../embed';
import type { MeetingContent } from '../meetingcontent';
import { apiErrorText } from '../messages';
import { confirmDialog } from '../ui/modal';
import { encryptedPill, panelHead } from '../ui/parts';
import { toast } from '../ui/toasts';
import { NOTEPAD_BUNDLE, NOTEPAD_GLOBAL, type NotepadLib, type NotepadSession, type PresenceUser } from './types';

/** The document of kind `notepad` that holds the notes. */
export const NOTEPAD_DOC = 'main';
/** An awareness update of one client with a cursor is a few hundred bytes; base64 of 8 KiB is plenty. */
const MAX_PRESENCE_B64 = 8 * 1024;

/** A presence message: `{type:"notepad_presence", update:<base64 awareness update>, ask?:true}`. */
export interface PresenceMessage {
  type: 'notepad_presence';
  update: Uint8Array;
  ask: boolean;
}

export function parsePresence(v: unknown): PresenceMessage | null {
  if (typeof v !== 'object' || v === null) return null;
  const m = v as { type?: unknown; update?: unknown; ask?: unknown };
  if (m.type !== 'notepad_presence' || typeof m.update !== 'string' || !m.update || m.update.length > MAX_PRESENCE_B64) return null;
  let update: Uint8Array;
  try {
    update = fromBase64(m.update);
  } catch {
    return null;
  }
  return { type: 'notepad_presence', update, ask: m.ask === true };
}

let loading: Promise<NotepadLib> | null = null;

/** Loads the lazy bundle once (a classic script: it loads from the server even inside an LMS page). */
export function loadNotepadLib(base: string): Promise<NotepadLib> {
  const g = globalThis as unknown as Record<string, NotepadLib | undefined>;
  const ready = g[NOTEPAD_GLOBAL];
  if (ready) return Promise.resolve(ready);
  loading ??= new Promise<NotepadLib>((resolve, reject) => {
    const s = document.createElement('script');
    s.src = serverUrl(base, NOTEPAD_BUNDLE);
    s.async = true;
    s.addEventListener('load', () => {
      const lib = g[NOTEPAD_GLOBAL];
      if (lib) resolve(lib);
      else reject(new Error(`${NOTEPAD_BUNDLE} loaded but did not register the editor`));
    });
    s.addEventListener('error', () => {
      loading = null;
      s.remove();
      reject(new Error(`the editor (${NOTEPAD_BUNDLE}) could not be loaded from the server`));
    });
    document.head.appendChild(s);
  });
  return loading;
}

export interface SharedNotepadOptions {
  content: MeetingContent;
  /** The name we chose (beside our cursor in others' editors). */
  name: string;
  nameOf: (identity: string) => string;
  present: () => Array<{ identity: string; isAdmin: boolean }>;
  /** Sends a presence message (sealed like chat in an encrypted room). */
  send: (v: unknown, to?: string[]) => Promise<void>;
  onClose: () => void;
}

export class SharedNotepad {
  readonly el: HTMLElement;
  private readonly editorBox: HTMLElement;
  private readonly presenceEl: HTMLElement;
  private readonly lockNote: HTMLElement;
  private readonly status: HTMLElement;
  private session: NotepadSession | null = null;
  /** Bumped at every open and close, so a slow open that was closed meanwhile is undone. */
  private generation = 0;
  private locked: boolean;
  private readonly unsubLocks: () => void;

  constructor(private readonly o: SharedNotepadOptions) {
    const c = o.content;
    this.locked = !c.mayWrite('notepad');
    const md = h('button', { class: 'btn btn-sm btn-secondary', type: 'button', 'data-testid': 'notepad-export-md', title: 'Download the notes as Markdown (notes.md)' }, 'Markdown');
    md.addEventListener('click', () => this.exportMarkdown());
    const pdf = h('button', { class: 'btn btn-sm btn-secondary', type: 'button', 'data-testid': 'notepad-export-pdf', title: "Print the notes, or save them as PDF in the browser's print dialog" }, 'PDF');
    pdf.addEventListener('click', () => this.print());
    // Hosts may clear the notes for everyone (the server keeps nothing of them afterwards).
    let clear: HTMLButtonElement | null = null;
    if (c.isAdmin) {
      clear = h('button', { class: 'btn btn-sm btn-ghost', type: 'button', 'data-testid': 'notepad-clear', title: 'Clear the notes for everyone' }, 'Clear');
      clear.addEventListener('click', () => void this.clearAll());
    }
    this.presenceEl = h('ul', { class: 'notepad-presence', 'data-testid': 'notepad-presence', 'aria-label': 'In the notes' });
    this.lockNote = h('p', { class: 'notepad-lock', 'data-testid': 'notepad-locked', hidden: true }, 'A host has locked the notes: you can read them, not change them.');
    this.status = h('p', { class: 'notepad-status', 'data-testid': 'notepad-status' }, 'Loading the notes…');
    this.editorBox = h('div', { class: 'notepad-editor' });
    this.el = h(
      'section',
      { class: 'panel notepad-panel', 'aria-label': 'Shared notes', 'data-testid': 'notepad-panel' },
      panelHead('Notes', 'Close the notes', () => o.onClose(), c.encrypted ? encryptedPill('The notes are sealed in the browser; the server keeps and relays ciphertext only') : null),
      h('div', { class: 'notepad-bar' }, this.presenceEl, h('span', { class: 'notepad-exports' }, md, pdf, clear)),
      this.lockNote,
      this.status,
      this.editorBox,
    );
    this.renderLock();
    this.unsubLocks = c.onLocks(() => {
      const was = this.locked;
      this.locked = !c.mayWrite('notepad');
      if (was === this.locked) return;
      this.renderLock();
      this.session?.setReadOnly(this.locked);
      toast(this.locked ? 'A host locked the shared notes: you can read them, not change them.' : 'A host unlocked the shared notes: you can write in them again.', this.locked ? 'warning' : 'info');
    });
  }

  /** The panel was opened: the editor loads (first time: the lazy bundle too). */
  async opened(): Promise<void> {
    if (this.session) return;
    const gen = ++this.generation;
    this.status.hidden = false;
    this.status.textContent = 'Loading the notes…';
    this.el.dataset.state = 'loading';
    const c = this.o.content;
    try {
      const lib = await loadNotepadLib(c.api.base);
      if (gen !== this.generation) return;
      replace(this.editorBox);
      const session = await lib.createSession({
        parent: this.editorBox,
        me: c.me,
        name: this.o.name,
        isAdmin: c.isAdmin,
        readOnly: this.locked,
        open: (handlers) => c.documents('notepad').open(NOTEPAD_DOC, handlers),
        present: this.o.present,
        nameOf: this.o.nameOf,
        sendPresence: (update, so) => void this.o.send({ type: 'notepad_presence', update: toBase64(update), ask: so?.ask === true || undefined }, so?.to).catch(() => {}),
        onPresence: (users) => this.renderPresence(users),
        onError: (text) => toast(text, 'error'),
        onReloaded: (why) => {
          if (why === 'cleared') toast('A host cleared the shared notes.', 'info');
        },
      });
      if (gen !== this.generation) {
        session.destroy();
        return;
      }
      this.session = session;
      this.status.hidden = true;
      this.el.dataset.state = 'ready';
      if (!this.locked) session.focus();
    } catch (e) {
      if (gen !== this.generation) return;
      const why = e instanceof Error ? e.message : String(e);
      this.status.textContent = `The notes could not be opened: ${why}.`;
      this.el.dataset.state = 'error';
      toast(`The notes could not be opened: ${why}.`, 'error');
    }
  }

  /** The panel was closed: the session ends (the others see us leave the notes). */
  closed(): void {
    this.generation++;
    this.session?.destroy();
    this.session = null;
    replace(this.editorBox);
    replace(this.presenceEl);
  }

  /** A presence message from `from` (opened: plain JSON, or unsealed). */
  presence(from: string, v: unknown): void {
    const m = parsePresence(v);
    if (m) this.session?.presence(from, m.update, m.ask);
  }

  participantLeft(identity: string): void {
    this.session?.participantLeft(identity);
  }

  destroy(): void {
    this.closed();
    this.unsubLocks();
  }

  private async clearAll(): Promise<void> {
    const ok = await confirmDialog({ title: 'Clear the notes for everyone?', body: 'The shared notes will be empty for everyone in the meeting. This cannot be undone.', confirm: 'Clear notes', danger: true });
    if (!ok) return;
    try {
      await this.o.content.api.contentClear('notepad', NOTEPAD_DOC);
    } catch (e) {
      toast(apiErrorText(e, 'The notes could not be cleared.'), 'error');
    }
  }

  private renderLock(): void {
    this.lockNote.hidden = !this.locked;
    this.el.dataset.locked = String(this.locked);
  }

  private renderPresence(users: PresenceUser[]): void {
    replace(
      this.presenceEl,
      users.map((u) =>
        h(
          'li',
          {
            class: `notepad-user${u.active ? ' active' : ''}`,
            'data-testid': 'notepad-presence-user',
            'data-identity': u.identity,
            'data-active': String(u.active),
            title: u.active ? `${u.name} is editing` : `${u.name} has the notes open`,
          },
          h('span', { class: 'notepad-dot', style: `background:${u.color}` }),
          u.self ? `${u.name} (you)` : u.name,
        ),
      ),
    );
  }

  private text(): string | null {
    if (!this.session) {
      toast('The notes are still loading.', 'warning');
      return null;
    }
    return this.session.text();
  }

  private exportMarkdown(): void {
    const text = this.text();
    if (text === null) return;
    const url = URL.createObjectURL(new Blob([text], { type: 'text/markdown;charset=utf-8' }));
    const a = h('a', { href: url, download: 'notes.md', hidden: true });
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }

  /**
   * A print view of the notes (the browser's print dialog saves it as PDF): the page prints
   * only this element while `printing-notes` is on (styles.css, @media print).
   */
  private print(): void {
    const text = this.text();
    if (text === null) return;
    // One left by a print whose afterprint never came (some browsers do not send it).
    for (const old of document.querySelectorAll('body > .notes-print')) old.remove();
    const view = h('article', { class: 'notes-print', 'data-testid': 'notepad-print-view' }, h('h1', null, 'Notes'), h('div', { class: 'notes-print-text' }, text));
    document.body.appendChild(view);
    document.body.classList.add('printing-notes');
    const done = () => {
      document.body.classList.remove('printing-notes');
      view.remove();
      window.removeEventListener('afterprint', done);
    };
    window.addEventListener('afterprint', done);
    window.print();
  }
}
