// The notepad's lazy bundle (assets/lazy/notepad.js): the editor (CodeMirror 6) bound to the
// shared Yjs text (y-codemirror.next, remote cursors from awareness), loaded when someone
// first opens the notepad so that app.js stays small. It registers itself on
// `globalThis[NOTEPAD_GLOBAL]`; notepad.ts loads it with a script element (a classic script
// loads from the server's origin even when an LMS page embeds the client).

import { defaultKeymap } from '@codemirror/commands';
import { Compartment, EditorState } from '@codemirror/state';
import { EditorView, keymap, placeholder } from '@codemirror/view';
import { yCollab, yUndoManagerKeymap } from 'y-codemirror.next';
import { Awareness, encodeAwarenessUpdate, applyAwarenessUpdate, removeAwarenessStates } from 'y-protocols/awareness';
import * as Y from 'yjs';

import { colorOf, sanitizePresence } from './presence';
import { NotepadSync, REMOTE, TEXT } from './sync';
import { NOTEPAD_GLOBAL, type NotepadLib, type NotepadSession, type NotepadSessionOptions, type PresenceUser } from './types';

/** Someone counts as editing this long after their last change. */
const ACTIVE_MS = 5000;

class Session implements NotepadSession {
  private view: EditorView | null = null;
  private awareness: Awareness | null = null;
  private readonly editable = new Compartment();
  private readOnly: boolean;
  private readonly sync: NotepadSync;
  /** Awareness clients and the participant who introduced each. */
  private readonly owners = new Map<number, string>();
  /** When each participant last changed the text. */
  private readonly lastEdit = new Map<string, number>();
  private lastPresence = '';
  private readonly tick: ReturnType<typeof setInterval>;
  private destroyed = false;

  constructor(private readonly o: NotepadSessionOptions) {
    this.readOnly = o.readOnly;
    this.sync = new NotepadSync({
      me: o.me,
      isAdmin: o.isAdmin,
      open: o.open,
      present: o.present,
      canWrite: () => !this.readOnly,
      nameOf: o.nameOf,
      onDoc: (doc, why) => {
        this.bind(doc);
        if (why !== 'opened') o.onReloaded?.(why);
      },
      onError: o.onError,
      onRemote: (from) => {
        this.lastEdit.set(from, Date.now());
        this.emitPresence();
      },
    });
    this.tick = setInterval(() => this.emitPresence(), 1000);
  }

  start(): Promise<void> {
    return this.sync.start();
  }

  setReadOnly(readOnly: boolean): void {
    this.readOnly = readOnly;
    this.view?.dispatch({ effects: this.editable.reconfigure(this.editableExt()) });
  }

  presence(from: string, update: Uint8Array, wantsReply: boolean): void {
    const a = this.awareness;
    if (!a || from === this.o.me) return;
    const clean = sanitizePresence(update, from, this.o.nameOf(from), this.owners);
    if (clean) applyAwarenessUpdate(a, clean, 'remote');
    if (wantsReply) this.o.sendPresence(encodeAwarenessUpdate(a, [a.clientID]), { to: [from] });
  }

  participantLeft(identity: string): void {
    const a = this.awareness;
    this.lastEdit.delete(identity);
    if (!a) return;
    const theirs = [...this.owners].filter(([, who]) => who === identity).map(([id]) => id);
    removeAwarenessStates(a, theirs, 'left');
  }

  text(): string {
    return this.sync.text;
  }

  focus(): void {
    this.view?.focus();
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    clearInterval(this.tick);
    const a = this.awareness;
    if (a) {
      // Tell the others we closed it (a null state), then stop.
      a.setLocalState(null);
      a.destroy();
    }
    void this.sync.flush().finally(() => this.sync.close());
    this.view?.destroy();
    this.view = null;
    this.awareness = null;
  }

  private editableExt() {
    return [EditorView.editable.of(!this.readOnly), EditorState.readOnly.of(this.readOnly)];
  }

  /** A (new) document: a new editor and awareness on it, in place of the old ones. */
  private bind(doc: Y.Doc): void {
    if (this.destroyed) return;
    const hadFocus = this.view?.hasFocus ?? false;
    this.view?.destroy();
    if (this.awareness) {
      this.awareness.setLocalState(null);
      this.awareness.destroy();
    }
    const a = new Awareness(doc);
    const color = colorOf(this.o.me);
    a.setLocalStateField('user', { name: this.o.name, color, colorLight: `${color}33` });
    a.on('update', ({ added, updated, removed }: { added: number[]; updated: number[]; removed: number[] }, origin: unknown) => {
      const changed = [...added, ...updated, ...removed];
      if (origin === 'local' && changed.includes(a.clientID)) this.o.sendPresence(encodeAwarenessUpdate(a, [a.clientID]));
      this.emitPresence();
    });
    this.awareness = a;
    doc.on('update', (_u: Uint8Array, origin: unknown) => {
      if (origin !== REMOTE) this.lastEdit.set(this.o.me, Date.now());
    });
    const ytext = doc.getText(TEXT);
    this.view = new EditorView({
      parent: this.o.parent,
      state: EditorState.create({
        doc: ytext.toString(),
        extensions: [
          keymap.of([...yUndoManagerKeymap, ...defaultKeymap]),
          EditorView.lineWrapping,
          placeholder('Shared notes: everyone in the meeting can read and write here.'),
          EditorView.contentAttributes.of({ 'data-testid': 'notepad-editor', 'aria-label': 'Shared notes', spellcheck: 'true' }),
          this.editable.of(this.editableExt()),
          yCollab(ytext, a),
        ],
      }),
    });
    // Those already there learn we are here, and answer with where they are.
    this.o.sendPresence(encodeAwarenessUpdate(a, [a.clientID]), { ask: true });
    if (hadFocus) this.view.focus();
    this.emitPresence();
  }

  /** Who has the notepad open (one entry per participant), if that changed. */
  private emitPresence(): void {
    const a = this.awareness;
    if (!a) return;
    const now = Date.now();
    const seen = new Map<string, PresenceUser>();
    const active = (id: string) => now - (this.lastEdit.get(id) ?? 0) < ACTIVE_MS;
    seen.set(this.o.me, { identity: this.o.me, name: this.o.name, color: colorOf(this.o.me), active: active(this.o.me), self: true });
    for (const [clientId, state] of a.getStates()) {
      const who = clientId === a.clientID ? this.o.me : this.owners.get(clientId);
      if (!who || !state || seen.has(who)) continue;
      seen.set(who, { identity: who, name: this.o.nameOf(who), color: colorOf(who), active: active(who), self: false });
    }
    const users = [...seen.values()];
    const key = JSON.stringify(users);
    if (key === this.lastPresence) return;
    this.lastPresence = key;
    this.o.onPresence(users);
  }
}

const lib: NotepadLib = {
  async createSession(o) {
    const s = new Session(o);
    try {
      await s.start();
    } catch (e) {
      s.destroy();
      throw e;
    }
    return s;
  },
};

(globalThis as unknown as Record<string, NotepadLib>)[NOTEPAD_GLOBAL] = lib;
