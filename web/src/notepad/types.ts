// What the main bundle and the notepad's lazy bundle (assets/lazy/notepad.js: Yjs, CodeMirror)
// say to each other. Types only, so that importing them pulls no editor code into app.js.

import type { DocHandle, DocHandlers } from '../contentdocs';

/** Someone with the notepad open, as their presence says (the name is the roster's). */
export interface PresenceUser {
  identity: string;
  name: string;
  color: string;
  /** They changed the text or moved their cursor in the last few seconds. */
  active: boolean;
  /** Us. */
  self: boolean;
}

export interface NotepadSessionOptions {
  /** Where the editor goes. */
  parent: HTMLElement;
  /** Our identity and name (the name others see beside our cursor). */
  me: string;
  name: string;
  isAdmin: boolean;
  readOnly: boolean;
  /** Opens document `main` of kind `notepad` (ContentDocs.open). */
  open: (handlers: DocHandlers) => Promise<DocHandle>;
  /** Who is in the meeting now (for the choice of who compacts). */
  present: () => Array<{ identity: string; isAdmin: boolean }>;
  /** The display name of a participant. */
  nameOf: (identity: string) => string;
  /**
   * Sends an awareness update (to `to`, or to everyone): sealed like chat, never stored. `ask`:
   * those who get it answer with their own (we just opened the notepad).
   */
  sendPresence: (update: Uint8Array, o?: { to?: string[]; ask?: boolean }) => void;
  /** Who has the notepad open changed. */
  onPresence: (users: PresenceUser[]) => void;
  /** Something failed that the user must know of: one sentence. */
  onError: (text: string) => void;
  /** The text was replaced from the server (cleared by a host, or reloaded after a refusal). */
  onReloaded?: (why: 'cleared' | 'refused') => void;
}

export interface NotepadSession {
  setReadOnly(readOnly: boolean): void;
  /** An awareness update from `from` arrived (already opened). */
  presence(from: string, update: Uint8Array, wantsReply: boolean): void;
  participantLeft(identity: string): void;
  /** The text as it is now. */
  text(): string;
  /** Puts the caret in the editor. */
  focus(): void;
  destroy(): void;
}

/** What the lazy bundle puts on `globalThis[NOTEPAD_GLOBAL]`. */
export interface NotepadLib {
  createSession(o: NotepadSessionOptions): Promise<NotepadSession>;
}

export const NOTEPAD_GLOBAL = '__enclaveNotepad';
export const NOTEPAD_BUNDLE = 'assets/lazy/notepad.js';
