// Hosts' controls over what everyone may publish: mute all, and locks for everyone's
// microphone, camera and screen sharing, chat, files in chat, the whiteboard and the notes. The server enforces the locks (it refuses and
// unpublishes a locked source); these controls only ask it to.
import { h, icon } from '../dom';

export type LockService = 'mic' | 'webcam' | 'screenShare' | 'chat' | 'privateChat' | 'chatFile' | 'whiteboard' | 'sharedNotepad';

export type LockState = Record<LockService, boolean>;

export interface LockActions {
  muteAll: () => void;
  setLock: (service: LockService, lock: boolean) => Promise<boolean>;
}

export const LOCK_LABELS: Record<LockService, string> = {
  mic: 'Microphones',
  webcam: 'Cameras',
  screenShare: 'Screen sharing',
  chat: 'Chat',
  privateChat: 'Private chat',
  chatFile: 'Files in chat',
  whiteboard: 'Whiteboard',
  sharedNotepad: 'Notes',
};
const TESTIDS: Record<LockService, string> = {
  mic: 'lock-mics-all',
  webcam: 'lock-webcams-all',
  screenShare: 'lock-screens-all',
  chat: 'lock-chat-all',
  privateChat: 'lock-private-chat-all',
  chatFile: 'lock-chat-files-all',
  whiteboard: 'lock-whiteboard-all',
  sharedNotepad: 'lock-notepad-all',
};

export class LockControls {
  readonly el: HTMLElement;

  constructor(initial: LockState, private readonly actions: LockActions) {
    const mute = h('button', { class: 'chip-btn', type: 'button', 'data-testid': 'mute-all-button', title: 'Mute everyone’s microphone (they can unmute)' }, icon('micOff', 'icon icon-xs'), 'Mute all');
    mute.addEventListener('click', () => this.actions.muteAll());
    const toggles = (Object.keys(LOCK_LABELS) as LockService[]).map((s) => this.toggle(s, initial[s]));
    this.el = h(
      'section',
      { class: 'lock-controls', 'aria-label': 'Controls for everyone', 'data-testid': 'lock-controls' },
      h('header', { class: 'waiting-head' }, h('h3', null, 'For everyone'), mute),
      h('div', { class: 'lock-toggles' }, toggles),
    );
  }

  private toggle(service: LockService, locked: boolean): HTMLElement {
    const box = h('input', { type: 'checkbox', 'data-testid': TESTIDS[service] }) as HTMLInputElement;
    box.checked = locked;
    box.addEventListener('change', () => {
      const want = box.checked;
      box.disabled = true;
      void this.actions.setLock(service, want).then((ok) => {
        box.disabled = false;
        if (!ok) box.checked = !want;
      });
    });
    return h('label', { class: 'lock-toggle', title: `Lock ${LOCK_LABELS[service].toLowerCase()} for everyone but hosts` }, box, icon('lock', 'icon icon-xs'), LOCK_LABELS[service]);
  }
}
