// The chat panel. Messages are text nodes (no markup), ordered by their send time.
import { h, hueOf, icon } from '../dom';
import { UploadError, formatBytes } from '../files';
import { MAX_CHAT_CHARS, type ChatFile } from '../protocol';
import { encryptedPill, panelHead } from './parts';

export interface ChatEntry {
  id: string;
  fromIdentity: string;
  fromName: string;
  text: string;
  at: number;
  self: boolean;
  system: boolean;
  /** A private message: to whom (sent by us), or that it was for us (received). */
  privateLabel?: string;
  /** A file shared with the message: a button downloads it. */
  file?: ChatFile;
}

/** What the panel's file button and file links do (chat.ts): share a file, fetch one. */
export interface ChatFileActions {
  /**
   * Uploads and announces a file; `progress` gets the fraction sent (0..1); `resume`: the id of
   * an upload of this file that stopped. Rejects with a message for the person (an UploadError
   * when the upload can be continued).
   */
  share(file: File, target: ChatTarget, progress: (fraction: number) => void, resume?: string): Promise<void>;
  /** Fetches, opens and saves a shared file. Rejects with a message for the person. */
  fetch(file: ChatFile): Promise<void>;
}

/** Whom a message goes to: everyone, one participant, or the hosts. */
export type ChatTarget = { kind: 'everyone' } | { kind: 'one'; identity: string; name: string } | { kind: 'hosts' };

export class ChatPanel {
  readonly el: HTMLElement;
  private readonly list: HTMLElement;
  private readonly input: HTMLInputElement;
  private readonly sendBtn: HTMLButtonElement;
  private readonly empty: HTMLElement;
  private readonly seen = new Set<string>();
  private readonly placeholder: string;
  private readonly recipient: HTMLSelectElement;
  private people: Array<{ identity: string; name: string }> = [];
  private hasHosts = false;
  private privateLocked = false;
  private files: ChatFileActions | null = null;
  /** The file button and input, once files are on (`enableFiles`). */
  private fileBtn: HTMLButtonElement | null = null;
  private fileInput: HTMLInputElement | null = null;
  private readonly progress: HTMLElement;
  private chatLocked = false;
  private fileLocked = false;
  private uploading = false;
  private fileTitle = '';
  private readonly form: HTMLFormElement;

  constructor(
    encrypted: boolean,
    private readonly onSend: (text: string, target: ChatTarget) => Promise<void>,
    onClose: () => void,
  ) {
    this.recipient = h('select', { class: 'input chat-recipient', 'aria-label': 'Send to', 'data-testid': 'private-chat-select' });
    this.renderRecipients();
    this.list = h('ol', { class: 'chat-list', role: 'log', 'aria-live': 'polite', 'aria-label': 'Chat messages', 'data-testid': 'chat-list' });
    this.empty = h(
      'li',
      { class: 'chat-empty muted' },
      encrypted ? 'No messages yet. Chat in this meeting is end-to-end encrypted.' : 'No messages yet.',
    );
    this.list.appendChild(this.empty);
    this.input = h('input', {
      class: 'input chat-input',
      type: 'text',
      placeholder: encrypted ? 'Message (end-to-end encrypted)' : 'Message',
      maxlength: MAX_CHAT_CHARS,
      autocomplete: 'off',
      'aria-label': 'Chat message',
      'data-testid': 'chat-input',
    });
    this.placeholder = this.input.placeholder;
    this.sendBtn = h('button', { class: 'icon-btn send-btn', type: 'submit', 'aria-label': 'Send message', title: 'Send', 'data-testid': 'chat-send' }, icon('send'));
    const form = h('form', { class: 'chat-form' }, this.recipient, this.input, this.sendBtn);
    this.form = form;
    this.progress = h('div', { class: 'chat-upload', hidden: true, role: 'status', 'data-testid': 'chat-file-progress' });
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.submit();
    });
    this.el = h(
      'section',
      { class: 'panel chat-panel', 'aria-label': 'Chat', 'data-testid': 'chat-panel' },
      panelHead('Chat', 'Close chat', onClose, encrypted ? encryptedPill('Sealed with this session’s data key before it leaves your browser') : null),
      this.list,
      this.progress,
      form,
    );
  }

  /**
   * Turns on file sharing: a file button (and its input) in the composer, and downloads from file
   * links. Not called when the room has file sharing off.
   */
  enableFiles(actions: ChatFileActions, encrypted: boolean): void {
    this.files = actions;
    const input = h('input', { type: 'file', class: 'chat-file-input', 'aria-hidden': 'true', tabindex: -1, 'data-testid': 'chat-file-input' });
    const btn = h(
      'button',
      {
        class: 'icon-btn chat-file-btn',
        type: 'button',
        'aria-label': encrypted ? 'Share a file (end-to-end encrypted)' : 'Share a file',
        title: encrypted ? 'Share a file (sealed before it leaves your browser)' : 'Share a file',
        'data-testid': 'chat-file-button',
      },
      icon('paperclip'),
    );
    this.fileTitle = btn.title;
    btn.addEventListener('click', () => input.click());
    input.addEventListener('change', () => {
      const file = input.files?.[0];
      input.value = ''; // the same file can be chosen again
      if (file) void this.share(file);
    });
    this.fileBtn = btn;
    this.fileInput = input;
    this.form.insertBefore(btn, this.input);
    this.form.appendChild(input);
    this.renderFileState();
  }

  /** A host locked (or unlocked) file sharing in the chat for this participant. */
  setFileLocked(locked: boolean): void {
    this.fileLocked = locked;
    this.renderFileState();
  }

  private renderFileState(): void {
    if (!this.fileBtn || !this.fileInput) return;
    const off = this.chatLocked || this.fileLocked || this.uploading;
    this.fileBtn.disabled = off;
    this.fileInput.disabled = off;
    this.fileBtn.dataset.locked = String(this.chatLocked || this.fileLocked);
    this.fileBtn.title = this.chatLocked ? 'A host locked the chat' : this.fileLocked ? 'A host locked file sharing' : this.fileTitle;
  }

  private async share(file: File, resume?: string): Promise<void> {
    if (!this.files || this.uploading) return;
    this.uploading = true;
    this.renderFileState();
    const bar = h('progress', { max: 1, value: 0 });
    const label = h('span', { class: 'chat-upload-label' }, `Sharing ${file.name} (${formatBytes(file.size)})…`);
    this.progress.replaceChildren(label, bar);
    this.progress.hidden = false;
    this.progress.dataset.state = 'uploading';
    try {
      await this.files.share(
        file,
        this.target(),
        (f) => {
          bar.value = f;
        },
        resume,
      );
      this.progress.hidden = true;
      this.progress.dataset.state = 'done';
    } catch (e) {
      this.progress.dataset.state = 'failed';
      label.textContent = e instanceof Error ? e.message : String(e);
      bar.remove();
      if (e instanceof UploadError) {
        // What the server holds already is not sent again.
        const retry = h('button', { class: 'btn btn-ghost btn-sm', type: 'button', 'data-testid': 'chat-file-retry' }, 'Try again');
        retry.addEventListener('click', () => void this.share(file, e.fileId));
        this.progress.appendChild(retry);
      }
      const dismiss = h('button', { class: 'btn btn-ghost btn-sm', type: 'button' }, 'Dismiss');
      dismiss.addEventListener('click', () => (this.progress.hidden = true));
      this.progress.appendChild(dismiss);
    } finally {
      this.uploading = false;
      this.renderFileState();
    }
  }

  /** The button of a shared file: fetches it on click (again on each click: nothing is cached). */
  private fileLink(f: ChatFile): HTMLElement {
    const btn = h(
      'button',
      { class: 'chat-file', type: 'button', 'data-testid': 'chat-file-link', 'data-file-id': f.file_id, title: `Download ${f.name}` },
      icon('paperclip', 'icon icon-xs'),
      h('span', { class: 'chat-file-name' }, f.name),
      h('span', { class: 'chat-file-size muted' }, formatBytes(f.size)),
    );
    btn.addEventListener('click', () => {
      if (!this.files || btn.dataset.state === 'loading') return;
      btn.dataset.state = 'loading';
      btn.setAttribute('aria-busy', 'true');
      this.files.fetch(f).then(
        () => {
          btn.dataset.state = 'done';
          btn.removeAttribute('aria-busy');
        },
        (e: unknown) => {
          btn.dataset.state = 'failed';
          btn.removeAttribute('aria-busy');
          btn.title = e instanceof Error ? e.message : String(e);
        },
      );
    });
    return btn;
  }

  focus(): void {
    this.input.focus();
  }

  /** Who can be written to privately (everyone else in the room), and whether hosts are here. */
  setPeople(people: Array<{ identity: string; name: string }>, hasHosts: boolean): void {
    const key = (xs: Array<{ identity: string; name: string }>) => xs.map((p) => `${p.identity}\u0000${p.name}`).join('\u0001');
    if (key(people) === key(this.people) && hasHosts === this.hasHosts) return;
    this.people = people;
    this.hasHosts = hasHosts;
    this.renderRecipients();
  }

  /** A host locked (or unlocked) this participant's private chat: only "Everyone" is left. */
  setPrivateLocked(locked: boolean): void {
    this.privateLocked = locked;
    this.renderRecipients();
  }

  // Participant identities never contain '@' (ours are [A-Za-z0-9_-]), so '@hosts' is free.
  private renderRecipients(): void {
    const chosen = this.recipient.value;
    const opts = [h('option', { value: '' }, 'Everyone')];
    if (!this.privateLocked) {
      if (this.hasHosts) opts.push(h('option', { value: '@hosts' }, 'Hosts (private)'));
      for (const p of this.people) opts.push(h('option', { value: p.identity }, `${p.name} (private)`));
    }
    this.recipient.replaceChildren(...opts);
    this.recipient.value = opts.some((o) => o.value === chosen) ? chosen : '';
    this.recipient.hidden = opts.length === 1;
  }

  private target(): ChatTarget {
    const v = this.recipient.value;
    if (!v) return { kind: 'everyone' };
    if (v === '@hosts') return { kind: 'hosts' };
    const p = this.people.find((x) => x.identity === v);
    return p ? { kind: 'one', identity: p.identity, name: p.name } : { kind: 'everyone' };
  }

  /** A host locked (or unlocked) this participant's chat: they still read it. */
  setLocked(locked: boolean): void {
    this.chatLocked = locked;
    this.renderFileState();
    this.input.disabled = locked;
    this.sendBtn.disabled = locked;
    this.input.placeholder = locked ? 'A host locked the chat' : this.placeholder;
    this.el.dataset.locked = String(locked);
  }

  private async submit(): Promise<void> {
    const text = this.input.value.trim();
    if (!text) return;
    this.sendBtn.disabled = true;
    try {
      await this.onSend(text, this.target());
      this.input.value = '';
    } finally {
      this.sendBtn.disabled = false;
      this.input.focus();
    }
  }

  has(id: string): boolean {
    return this.seen.has(id);
  }

  /** Adds a message; returns false for a duplicate. */
  add(m: ChatEntry): boolean {
    if (this.seen.has(m.id)) return false;
    this.seen.add(m.id);
    this.empty.remove();
    const time = new Date(m.at);
    const when = m.at > 0 && Number.isFinite(time.getTime()) ? time.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : '';
    const li = h(
      'li',
      {
        class: `chat-msg${m.self ? ' self' : ''}${m.system ? ' system' : ''}${m.privateLabel ? ' private' : ''}`,
        'data-testid': 'chat-message',
        'data-from': m.system ? '' : m.fromIdentity,
        'data-private': m.privateLabel ? 'true' : 'false',
        'data-system': m.system ? 'true' : 'false',
        'data-at': String(m.at),
        style: `--hue:${hueOf(m.fromIdentity)}`,
      },
      m.system
        ? h('div', { class: 'chat-meta' }, icon('shield', 'icon icon-xs'), h('span', { class: 'chat-from' }, 'Meeting notice'), when ? h('time', null, when) : null)
        : h('div', { class: 'chat-meta' }, h('span', { class: 'chat-from' }, m.self ? 'You' : m.fromName), when ? h('time', { datetime: time.toISOString() }, when) : null),
      m.privateLabel ? h('div', { class: 'chat-private', 'data-testid': 'chat-private-label' }, icon('lock', 'icon icon-xs'), m.privateLabel) : null,
      m.text || !m.file ? h('div', { class: 'chat-text', 'data-testid': 'chat-text' }, m.text) : null,
      m.file ? this.fileLink(m.file) : null,
    );
    // Keep send-time order (restored history and late arrivals).
    let before: Element | null = null;
    for (let c = this.list.lastElementChild; c; c = c.previousElementSibling) {
      const at = Number((c as HTMLElement).dataset.at ?? '0');
      if (at <= m.at) break;
      before = c;
    }
    const stick = this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 80;
    this.list.insertBefore(li, before);
    if (stick || m.self) this.list.scrollTop = this.list.scrollHeight;
    return true;
  }
}
